"""moto in server mode for the AWS tests, as close to AWS as the role needs.

The ``aws`` Molecule scenario and tests/support/aws.py start this instead of a plain
``moto_server``; each difference is listed in the aws_infrastructure role's
TROUBLESHOOTING.md:

- AWS's managed IAM policies (AmazonEKSClusterPolicy...) are loaded, as AWS has them.
- A managed node group created without an update configuration reports the one AWS
  gives it (``maxUnavailable: 1``): community.aws.eks_nodegroup reads it on every run
  after the first, and moto leaves it out.
- The tags of a managed node group can be listed and changed, as on AWS:
  community.aws.eks_nodegroup compares them on every run after the first, and moto
  handles the tags of clusters only.
- A KMS key can be scheduled for deletion by its ARN, as on AWS:
  amazon.aws.kms_key passes the ARN, and moto accepts only the bare key id there.
- An RDS instance on gp3 storage reports the baseline IOPS and throughput AWS gives
  gp3 below 400 GiB (3000 and 125 MiB/s): amazon.aws.rds_instance reads both on every
  run after the first, and moto leaves them out unless they were given.
"""

from __future__ import annotations

import os
import sys

os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"

from moto.eks import models
from moto.kms import models as kms_models
from moto.rds import models as rds_models
from moto.server import main

_create_nodegroup = models.Nodegroup.__init__


def _nodegroup_with_aws_defaults(self, *args, **kwargs) -> None:
    _create_nodegroup(self, *args, **kwargs)
    if not self.update_config:
        self.update_config = {"maxUnavailable": 1}


models.Nodegroup.__init__ = _nodegroup_with_aws_defaults


def _find_nodegroup(backend, arn: str):
    for cluster in backend.clusters.values():
        for nodegroup in cluster.nodegroups.values():
            if nodegroup.arn == arn:
                if nodegroup.tags is None:
                    nodegroup.tags = {}
                return nodegroup
    return None


_list_tags = models.EKSBackend.list_tags_for_resource
_tag = models.EKSBackend.tag_resource
_untag = models.EKSBackend.untag_resource


def _list_tags_with_nodegroups(self, resource_arn: str) -> dict:
    nodegroup = _find_nodegroup(self, resource_arn)
    return dict(nodegroup.tags) if nodegroup else _list_tags(self, resource_arn)


def _tag_with_nodegroups(self, resource_arn: str, tags: dict) -> None:
    nodegroup = _find_nodegroup(self, resource_arn)
    if nodegroup:
        nodegroup.tags.update(tags)
    else:
        _tag(self, resource_arn, tags)


def _untag_with_nodegroups(self, resource_arn: str, tag_keys: list) -> None:
    nodegroup = _find_nodegroup(self, resource_arn)
    if nodegroup:
        for key in [tag_keys] if isinstance(tag_keys, str) else tag_keys:
            nodegroup.tags.pop(key, None)
    else:
        _untag(self, resource_arn, tag_keys)


models.EKSBackend.list_tags_for_resource = _list_tags_with_nodegroups
models.EKSBackend.tag_resource = _tag_with_nodegroups
models.EKSBackend.untag_resource = _untag_with_nodegroups

_create_db_instance = rds_models.DBInstance.__init__


def _db_instance_with_aws_defaults(self, *args, **kwargs) -> None:
    _create_db_instance(self, *args, **kwargs)
    if self.storage_type == "gp3":
        self.iops = self.iops or 3000
        self.storage_throughput = self.storage_throughput or 125


rds_models.DBInstance.__init__ = _db_instance_with_aws_defaults

_schedule_key_deletion = kms_models.KmsBackend.schedule_key_deletion


def _schedule_key_deletion_by_any_id(self, key_id: str, pending_window_in_days: int):
    return _schedule_key_deletion(
        self, self.any_id_to_key_id(key_id), pending_window_in_days
    )


kms_models.KmsBackend.schedule_key_deletion = _schedule_key_deletion_by_any_id

if __name__ == "__main__":
    sys.exit(main())
