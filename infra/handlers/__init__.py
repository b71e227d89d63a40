"""AWS Lambda handler sources; each subdirectory is zipped as one function's code."""
