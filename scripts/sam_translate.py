"""Prints, as JSON, the CloudFormation template that AWS SAM's own translator makes of
a SAM template: what CloudFormation receives at `sam deploy`. Run it with the pinned
SAM CLI's Python (`.venv-sam/bin/python scripts/sam_translate.py template.yaml
[Name=Value ...]`); no AWS call is made (the template uses no managed policies).

It goes through the same SamTemplateValidator that `sam validate` uses, so local
CodeUri paths are swapped for S3 URIs exactly as SAM does before translating."""

import json
import sys

from samcli.lib.translate.sam_template_validator import SamTemplateValidator
from samcli.yamlhelper import yaml_parse


class NoManagedPolicies:
    """The translator asks IAM for AWS managed policy ARNs only when a template names
    one; this template names none, so the answer is an empty map and no call is made."""

    def load(self):
        return {}


def main(argv):
    if len(argv) < 2:
        sys.exit("usage: sam_translate.py TEMPLATE [Name=Value ...]")
    with open(argv[1], encoding="utf-8") as source:
        template = yaml_parse(source.read())
    overrides = dict(pair.split("=", 1) for pair in argv[2:])
    validator = SamTemplateValidator(template, NoManagedPolicies(), region="us-east-1", parameter_overrides=overrides)
    translated = yaml_parse(validator.get_translated_template_if_valid())
    json.dump(translated, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv)
