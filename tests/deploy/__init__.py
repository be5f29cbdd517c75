"""Tests of deploy/ (the CDK app) and consumer/Dockerfile: no Docker, no AWS, no CLI."""
