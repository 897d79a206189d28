"""The templates as tests read them: intrinsics rendered as comparable text, a template's resources,
a function's role statements and alias."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

#: Services whose actions are on data (the rest: logs, X-Ray).
DATA_SERVICES = ("dynamodb:", "s3:", "secretsmanager:", "lambda:", "sqs:", "kms:", "sns:", "execute-api:")


def render(value: Any) -> str:
    """An intrinsic-function value as one comparable string (Ref X -> ${X}, GetAtt -> ${X.Attr},
    Join and Sub -> the joined text, If -> If(cond, a, b)), so SAM's and CDK's spellings agree."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return f"${{{arg}}}"
        if key == "Fn::GetAtt":
            return "${" + (".".join(arg) if isinstance(arg, list) else arg) + "}"
        if key == "Fn::Join":
            return str(arg[0]).join(render(part) for part in arg[1])
        if key == "Fn::Sub":
            return arg if isinstance(arg, str) else render(arg[0])
        if key == "Fn::If":
            return f"If({arg[0]}, {render(arg[1])}, {render(arg[2])})"
    if isinstance(value, list):
        return "[" + ", ".join(render(item) for item in value) + "]"
    return repr(value)


def unwrap(items: Any) -> Iterator[dict[str, Any]]:
    """The statements (or policies) of a list, both branches of an Fn::If, without AWS::NoValue."""
    for item in items if isinstance(items, list) else [items]:
        if isinstance(item, dict) and set(item) == {"Fn::If"}:
            yield from unwrap([branch for branch in item["Fn::If"][1:] if branch != {"Ref": "AWS::NoValue"}])
        else:
            yield item


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Stack:
    """One template, plain CloudFormation."""

    kind: str
    template: dict[str, Any]

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return {key: value for key, value in self.template["Resources"].items() if value["Type"] == type_}

    def properties(self, logical_id: str) -> dict[str, Any]:
        properties: dict[str, Any] = self.template["Resources"][logical_id].get("Properties", {})
        return properties

    def function(self, logical_id: str) -> dict[str, Any]:
        assert self.template["Resources"][logical_id]["Type"] == "AWS::Lambda::Function"
        return self.properties(logical_id)

    def statements(self, logical_id: str) -> list[dict[str, Any]]:
        """Every IAM statement granted to a function's role (inline, or in policies attached to it)."""
        role = self.function(logical_id)["Role"]["Fn::GetAtt"][0]
        properties = self.properties(role)
        documents = [policy["PolicyDocument"] for policy in unwrap(properties.get("Policies", []))]
        for policy in self.resources("AWS::IAM::Policy").values():
            if {"Ref": role} in policy["Properties"]["Roles"]:
                documents.append(policy["Properties"]["PolicyDocument"])
        return [statement for document in documents for statement in unwrap(document["Statement"])]

    def data_permissions(self, logical_id: str) -> set[tuple[str, str]]:
        return {
            (action, render(resource))
            for statement in self.statements(logical_id)
            if statement["Effect"] == "Allow"
            for action in as_list(statement["Action"])
            if action.startswith(DATA_SERVICES)
            for resource in as_list(statement["Resource"])
        }

    def alias(self, function: str) -> str:
        """The logical id of the function's one alias (checked: named live, on a published version)."""
        (alias_id,) = [
            key
            for key, alias in self.resources("AWS::Lambda::Alias").items()
            if alias["Properties"]["FunctionName"] == {"Ref": function}
        ]
        return alias_id
