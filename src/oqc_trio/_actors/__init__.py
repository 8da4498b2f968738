"""The trio actor runtime: supervisor, submitter service, poll scheduler. Private."""
