"""A stand-in for GitHub's branch listing, paged as GitHub pages it (tests and bench)."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import responses

API = "https://github.example.test/api/v3"
REPO = "acme/models"


class BranchListing:
    """GET /repos/acme/models/branches, paged as GitHub pages it; counts the requests."""

    def __init__(self, mock: responses.RequestsMock, branches: list[str]) -> None:
        self.branches = branches
        self.pages: list[int] = []
        mock.add_callback(
            responses.GET,
            re.compile(re.escape(f"{API}/repos/{REPO}/branches") + r"(\?.*)?$"),
            callback=self._page,
        )

    def _page(self, request):
        query = parse_qs(urlsplit(request.url).query)
        per_page = min(int(query.get("per_page", ["30"])[0]), 100)
        page = int(query.get("page", ["1"])[0])
        self.pages.append(page)
        chunk = self.branches[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(self.branches):
            headers["Link"] = (
                f'<{API}/repos/{REPO}/branches?per_page={per_page}&page={page + 1}>; rel="next"'
            )
        body = [{"name": name, "protected": False} for name in chunk]
        return 200, headers, json.dumps(body)
