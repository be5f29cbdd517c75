"""Infrastructure as code for the whole system (AWS CDK v2, Python): see stockpipe_stack.py."""
