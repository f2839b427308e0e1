#!/usr/bin/env python3
"""Loads `batchfan scale export` output into moto's Application Auto Scaling and CloudWatch.

usage: moto_scale.py ENDPOINT EXPORT.json CLUSTER SERVICE
Creates the ECS cluster and service the scalable target names (moto requires them), then sends
each document as its --cli-input-json would (boto3 validates every parameter against the API
model), replacing the policy ARN placeholder in alarm actions with the ARN put-scaling-policy
returns. Prints what moto then describes, as JSON.
"""
import json
import sys

import boto3

endpoint, path, cluster, service = sys.argv[1:5]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
ecs = boto3.client("ecs", **kw)
aas = boto3.client("application-autoscaling", **kw)
cw = boto3.client("cloudwatch", **kw)
docs = json.load(open(path))

ecs.create_cluster(clusterName=cluster)
ecs.register_task_definition(family="worker", containerDefinitions=[{"name": "w", "image": "w:1", "memory": 512}])
ecs.create_service(cluster=cluster, serviceName=service, taskDefinition="worker", desiredCount=0)

aas.register_scalable_target(**docs["register-scalable-target"])
arns = {}
for policy in docs["put-scaling-policy"]:
    arns[policy["PolicyName"]] = aas.put_scaling_policy(**policy)["PolicyARN"]
for alarm in docs["put-metric-alarm"]:
    actions = []
    for action in alarm["AlarmActions"]:
        name = action.removeprefix("${PolicyARN:").removesuffix("}")
        actions.append(arns[name])
    alarm["AlarmActions"] = actions
    cw.put_metric_alarm(**alarm)

targets = aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
policies = aas.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"]
alarms = cw.describe_alarms()["MetricAlarms"]
print(json.dumps({
    "targets": [{"ResourceId": t["ResourceId"], "MinCapacity": t["MinCapacity"], "MaxCapacity": t["MaxCapacity"]} for t in targets],
    "policies": [{"PolicyName": p["PolicyName"], "PolicyType": p["PolicyType"],
                  "Steps": len(p.get("StepScalingPolicyConfiguration", {}).get("StepAdjustments", []))} for p in policies],
    "alarms": [{"AlarmName": a["AlarmName"], "AlarmActions": a["AlarmActions"], "Threshold": a["Threshold"],
                "Dimensions": a["Dimensions"]} for a in alarms],
}))
