"""One ComponentResource per capability; each takes a frozen `<Name>Args`."""

# Every component's type token starts with this, so a rename touches one line.
PACKAGE = "mlship"


def type_token(component: str) -> str:
    return f"{PACKAGE}:components:{component}"
