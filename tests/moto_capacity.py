#!/usr/bin/env python3
"""Makes a job queue over managed compute environments on a moto server, for the capacity
tests: an IAM service role and instance profile, the default VPC's subnets, a security group.

usage: moto_capacity.py ENDPOINT QUEUE ENVIRONMENTS_JSON [--docker]

ENVIRONMENTS_JSON: a list of {"name", "type": EC2|SPOT|FARGATE|FARGATE_SPOT, "state":
ENABLED|DISABLED, "maxvCpus", "desiredvCpus" (EC2), "instanceTypes" (EC2)}.
"""
import json
import sys
import urllib.request

import boto3

endpoint, queue, envs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
use_docker = "--docker" in sys.argv[4:]
req = urllib.request.Request(
    endpoint + "/moto-api/config",
    data=json.dumps({"batch": {"use_docker": use_docker}}).encode(),
    headers={"Content-Type": "application/json"},
    method="POST",
)
urllib.request.urlopen(req).read()
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
iam = boto3.client("iam", **kw)
ec2 = boto3.client("ec2", **kw)
batch = boto3.client("batch", **kw)
def get_or_create(get, create):
    """Tests set up queues concurrently on one server: whoever creates first wins."""
    try:
        return get()
    except Exception:
        try:
            return create()
        except Exception:
            return get()


role = get_or_create(
    lambda: iam.get_role(RoleName="batchfan-service")["Role"]["Arn"],
    lambda: iam.create_role(RoleName="batchfan-service", AssumeRolePolicyDocument="{}")["Role"]["Arn"],
)
profile = get_or_create(
    lambda: iam.get_instance_profile(InstanceProfileName="batchfan-instance")["InstanceProfile"]["Arn"],
    lambda: iam.create_instance_profile(InstanceProfileName="batchfan-instance")["InstanceProfile"]["Arn"],
)
subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
group = get_or_create(
    lambda: ec2.describe_security_groups(GroupNames=["batchfan-capacity"])["SecurityGroups"][0]["GroupId"],
    lambda: ec2.create_security_group(GroupName="batchfan-capacity", Description="capacity tests")["GroupId"],
)
order = []
for i, env in enumerate(envs):
    resources = {
        "type": env["type"],
        "maxvCpus": env["maxvCpus"],
        "subnets": subnets,
        "securityGroupIds": [group],
    }
    if not env["type"].startswith("FARGATE"):
        resources.update(
            minvCpus=0,
            desiredvCpus=env.get("desiredvCpus", 0),
            instanceTypes=env.get("instanceTypes", ["optimal"]),
            instanceRole=profile,
        )
    arn = batch.create_compute_environment(
        computeEnvironmentName=env["name"],
        type="MANAGED",
        state=env.get("state", "ENABLED"),
        computeResources=resources,
        serviceRole=role,
    )["computeEnvironmentArn"]
    order.append({"order": i + 1, "computeEnvironment": arn})
batch.create_job_queue(jobQueueName=queue, state="ENABLED", priority=1, computeEnvironmentOrder=order)
print("ok")
