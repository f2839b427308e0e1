#!/usr/bin/env python3
"""Prepares a moto server for AWS Batch tests: Batch without Docker (unless --docker), an IAM
service role, an UNMANAGED compute environment and a job queue.

usage: moto_batch.py ENDPOINT QUEUE [--docker]
"""
import json
import sys
import urllib.request

import boto3

endpoint, queue = sys.argv[1], sys.argv[2]
use_docker = "--docker" in sys.argv[3:]
req = urllib.request.Request(
    endpoint + "/moto-api/config",
    data=json.dumps({"batch": {"use_docker": use_docker}}).encode(),
    headers={"Content-Type": "application/json"},
    method="POST",
)
urllib.request.urlopen(req).read()
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
iam = boto3.client("iam", **kw)
batch = boto3.client("batch", **kw)
try:
    role = iam.get_role(RoleName="batchfan-service")["Role"]["Arn"]
except iam.exceptions.NoSuchEntityException:
    try:
        role = iam.create_role(RoleName="batchfan-service", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        # Another test's setup on this server created it first.
        role = iam.get_role(RoleName="batchfan-service")["Role"]["Arn"]
ce = batch.create_compute_environment(
    computeEnvironmentName=queue + "-ce", type="UNMANAGED", state="ENABLED", serviceRole=role
)["computeEnvironmentArn"]
batch.create_job_queue(
    jobQueueName=queue, state="ENABLED", priority=1, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}]
)
print("ok")
