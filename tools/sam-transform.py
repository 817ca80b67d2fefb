#!/usr/bin/env python3
"""Transforms a SAM template to CloudFormation with samtranslator, the
library CloudFormation's AWS::Serverless transform runs, and prints it as
JSON. The tests check what CloudFormation deploys, not our YAML.

usage: sam-transform.py TEMPLATE [NAME=VALUE ...]

Each NAME=VALUE is a parameter value. Local CodeUri values become
s3://kandy-provisioner-artifacts/<LogicalId>.zip, as `sam package` writes
them. No AWS call is made: the managed policies SAM may name come from the
fixed map below.
"""

import json
import os
import sys

# samtranslator reads the region (and from it the partition) from boto3.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

try:
    import yaml
    from samtranslator.translator.transform import transform
except ImportError as err:
    print(f"sam-transform: {err}", file=sys.stderr)
    sys.exit(3)

# The AWS managed policies SAM attaches or lets a template name.
MANAGED_POLICIES = {
    name: f"arn:aws:iam::aws:policy/{path}"
    for name, path in {
        "AWSLambdaBasicExecutionRole": "service-role/AWSLambdaBasicExecutionRole",
        "AWSLambdaSQSQueueExecutionRole": "service-role/AWSLambdaSQSQueueExecutionRole",
        "AWSLambdaVPCAccessExecutionRole": "service-role/AWSLambdaVPCAccessExecutionRole",
        "AWSXrayWriteOnlyAccess": "AWSXrayWriteOnlyAccess",
        "AWSXRayDaemonWriteAccess": "AWSXRayDaemonWriteAccess",
    }.items()
}


class FixedPolicies:
    def load(self):
        return MANAGED_POLICIES


class Loader(yaml.SafeLoader):
    """YAML as CloudFormation reads it: short-form intrinsics, and dates
    left as strings."""


Loader.yaml_implicit_resolvers = {
    k: [r for r in v if r[0] != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def intrinsic(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    name = suffix if suffix in ("Ref", "Condition") else "Fn::" + suffix
    return {name: value}


Loader.add_multi_constructor("!", intrinsic)


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    with open(argv[1], encoding="utf-8") as f:
        template = yaml.load(f, Loader=Loader)
    params = dict(arg.split("=", 1) for arg in argv[2:])
    # CloudFormation hands the transform list parameters as lists.
    for name, decl in template.get("Parameters", {}).items():
        value = params.get(name, decl.get("Default"))
        if (decl.get("Type") == "CommaDelimitedList" or decl.get("Type", "").startswith("List<")) and isinstance(value, str):
            params[name] = [v.strip() for v in value.split(",")]
    for logical_id, resource in template.get("Resources", {}).items():
        props = resource.get("Properties") or {}
        code = props.get("CodeUri")
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(code, str) and not code.startswith("s3://"):
            props["CodeUri"] = f"s3://kandy-provisioner-artifacts/{logical_id}.zip"
    out = transform(template, params, FixedPolicies())
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv)
