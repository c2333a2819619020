"""What the ``aws`` scenario proves, read back from moto with boto3.

``sentinels`` makes resources the role must never touch: an untagged VPC and bucket,
and a VPC, bucket and KMS key tagged for another customer. ``provisioned`` checks
every resource of the role: CIDRs, each security group rule, encryption, the public
access block, tags, DNS records. ``destroyed`` checks that nothing tagged for the
customer is left (the KMS key only scheduled for deletion) and that every sentinel is
still there. Each failed check is printed; the exit status is the number of them.
"""

from __future__ import annotations

import json
import sys

import boto3

CUSTOMER = "acme"
NAME = "tradehub-acme"
DOMAIN = "acme-trading.test"
HUBS = [
    "sourcing",
    "content",
    "contacts",
    "campaigns",
    "demand",
    "shipping",
    "services",
]
HUB_PORTS = list(range(8101, 8108))
ALLOWED = ["198.51.100.0/25", "203.0.113.0/24"]
OWNER = {"tradehub-customer": CUSTOMER, "tradehub-platform": "private-trade-hub"}
OWNER_FILTERS = [{"Name": "tag:" + k, "Values": [v]} for k, v in OWNER.items()]
SENTINEL_CIDRS = {"untagged": "10.90.0.0/16", "other": "10.91.0.0/16"}
SENTINEL_BUCKETS = ["tradehub-sentinel-untagged", "tradehub-sentinel-other"]


class Checks:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.passed = 0

    def check(self, ok: bool, what: str, found: object = None) -> None:
        if ok:
            self.passed += 1
        else:
            self.failures.append(
                "%s (found %s)" % (what, json.dumps(found, default=str))
            )


def tags(items: list | None) -> dict:
    return {t["Key"]: t["Value"] for t in items or []}


def owned(tag_dict: dict) -> bool:
    return all(tag_dict.get(k) == v for k, v in OWNER.items())


def clients(endpoint: str) -> dict:
    def make(service: str):
        return boto3.client(service, endpoint_url=endpoint, region_name="eu-west-1")

    names = ["ec2", "s3", "kms", "rds", "eks", "iam", "secretsmanager", "route53"]
    return {name: make(name) for name in names}


def make_sentinels(aws: dict) -> None:
    ec2, s3, kms = aws["ec2"], aws["s3"], aws["kms"]
    other = [
        {"Key": "tradehub-customer", "Value": "globex"},
        {"Key": "tradehub-platform", "Value": "private-trade-hub"},
    ]
    for kind, cidr in SENTINEL_CIDRS.items():
        spec = [
            {"ResourceType": "vpc", "Tags": [*other, {"Key": "Name", "Value": NAME}]}
        ]
        ec2.create_vpc(
            CidrBlock=cidr, TagSpecifications=spec if kind == "other" else []
        )
    for bucket in SENTINEL_BUCKETS:
        s3.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
    s3.put_bucket_tagging(Bucket=SENTINEL_BUCKETS[1], Tagging={"TagSet": other})
    kms.create_key(
        Description="sentinel of another customer",
        Tags=[{"TagKey": t["Key"], "TagValue": t["Value"]} for t in other],
    )


def sg_rules(ec2, group_id: str, egress: bool) -> set:
    """Every permission of a group as (protocol, from, to, source) tuples."""
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    found = set()
    for perm in group["IpPermissionsEgress" if egress else "IpPermissions"]:
        key = (perm.get("IpProtocol"), perm.get("FromPort"), perm.get("ToPort"))
        for r in perm.get("IpRanges", []):
            found.add((*key, r["CidrIp"]))
        for r in perm.get("UserIdGroupPairs", []):
            found.add((*key, r["GroupId"]))
        for r in perm.get("Ipv6Ranges", []):
            found.add((*key, r["CidrIpv6"]))
    return found


def check_provisioned(aws: dict, c: Checks, outputs: dict) -> None:
    ec2 = aws["ec2"]
    out = outputs["tradehub_aws"]

    vpcs = ec2.describe_vpcs(Filters=OWNER_FILTERS)["Vpcs"]
    c.check(len(vpcs) == 1, "one VPC for the customer", [v["VpcId"] for v in vpcs])
    vpc = vpcs[0]
    c.check(vpc["CidrBlock"] == "10.40.0.0/16", "VPC CIDR", vpc["CidrBlock"])
    c.check(vpc["VpcId"] == out["vpc_id"], "VPC id in the outputs", out["vpc_id"])

    subnets = ec2.describe_subnets(
        Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}]
    )
    by_tier: dict = {"public": {}, "private": {}}
    for subnet in subnets["Subnets"]:
        t = tags(subnet.get("Tags"))
        c.check(owned(t), "subnet tagged", t)
        by_tier[t.get("tradehub-tier")][subnet["AvailabilityZone"]] = subnet
    expected = {
        "public": {"eu-west-1a": "10.40.0.0/20", "eu-west-1b": "10.40.16.0/20"},
        "private": {"eu-west-1a": "10.40.128.0/20", "eu-west-1b": "10.40.144.0/20"},
    }
    for tier, zones in expected.items():
        found = {z: s["CidrBlock"] for z, s in by_tier[tier].items()}
        c.check(found == zones, "%s subnets per zone" % tier, found)
    for subnet in subnets["Subnets"]:
        c.check(
            not subnet["MapPublicIpOnLaunch"],
            "no public IPs on launch",
            subnet["SubnetId"],
        )

    igws = ec2.describe_internet_gateways(Filters=OWNER_FILTERS)["InternetGateways"]
    c.check(
        len(igws) == 1 and igws[0]["Attachments"][0]["VpcId"] == vpc["VpcId"],
        "one internet gateway attached to the VPC",
        igws,
    )
    nats = ec2.describe_nat_gateways(Filters=OWNER_FILTERS)["NatGateways"]
    nats = [n for n in nats if n["State"] == "available"]
    public_ids = {s["SubnetId"] for s in by_tier["public"].values()}
    c.check(
        {n["SubnetId"] for n in nats} == public_ids and len(nats) == 2,
        "one NAT gateway in each public subnet",
        [n["SubnetId"] for n in nats],
    )
    tables = ec2.describe_route_tables(Filters=OWNER_FILTERS)["RouteTables"]
    routes = {}
    for table in tables:
        default = [
            r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"
        ]
        target = (
            default[0].get("GatewayId") or default[0].get("NatGatewayId")
            if default
            else None
        )
        for assoc in table.get("Associations", []):
            if assoc.get("SubnetId"):
                routes[assoc["SubnetId"]] = target
    for zone, subnet in by_tier["public"].items():
        c.check(
            routes.get(subnet["SubnetId"]) == igws[0]["InternetGatewayId"],
            "public subnet of %s routed to the internet gateway" % zone,
            routes.get(subnet["SubnetId"]),
        )
    nat_by_subnet = {n["SubnetId"]: n["NatGatewayId"] for n in nats}
    for zone, subnet in by_tier["private"].items():
        c.check(
            routes.get(subnet["SubnetId"])
            == nat_by_subnet.get(by_tier["public"][zone]["SubnetId"]),
            "private subnet of %s routed to its zone's NAT gateway" % zone,
            routes.get(subnet["SubnetId"]),
        )

    groups = out["security_group_ids"]
    gw, hubs, db = groups["gateway"], groups["hubs"], groups["database"]
    c.check(
        sg_rules(ec2, gw, egress=False)
        == {("tcp", 443, 443, cidr) for cidr in ALLOWED},
        "gateway: 443 from the allowed networks only",
        sorted(sg_rules(ec2, gw, egress=False)),
    )
    c.check(
        sg_rules(ec2, gw, egress=True) == {("tcp", p, p, hubs) for p in HUB_PORTS},
        "gateway: out to the hubs' ports only",
        sorted(sg_rules(ec2, gw, egress=True)),
    )
    c.check(
        sg_rules(ec2, hubs, egress=False) == {("tcp", p, p, gw) for p in HUB_PORTS},
        "hubs: from the gateway on the hubs' ports only",
        sorted(sg_rules(ec2, hubs, egress=False)),
    )
    c.check(
        sg_rules(ec2, hubs, egress=True)
        == {("tcp", 5432, 5432, db), ("tcp", 443, 443, "0.0.0.0/0")},
        "hubs: out to the database and HTTPS only",
        sorted(sg_rules(ec2, hubs, egress=True)),
    )
    c.check(
        sg_rules(ec2, db, egress=False) == {("tcp", 5432, 5432, hubs)},
        "database: 5432 from the hubs only",
        sorted(sg_rules(ec2, db, egress=False)),
    )
    c.check(
        sg_rules(ec2, db, egress=True) == set(),
        "database: no egress",
        sorted(sg_rules(ec2, db, egress=True)),
    )
    for group_id in (gw, hubs, db):
        group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
        c.check(
            owned(tags(group.get("Tags"))), "security group tagged", group["GroupName"]
        )

    kms = aws["kms"]
    key_arn = out["kms_key_arn"]
    key = kms.describe_key(KeyId=key_arn)["KeyMetadata"]
    c.check(
        key["KeyManager"] == "CUSTOMER" and key["Enabled"],
        "customer-managed key, enabled",
        key,
    )
    c.check(
        kms.get_key_rotation_status(KeyId=key_arn)["KeyRotationEnabled"],
        "key rotation on",
    )
    key_tags = {
        t["TagKey"]: t["TagValue"]
        for t in kms.list_resource_tags(KeyId=key_arn)["Tags"]
    }
    c.check(owned(key_tags), "key tagged", key_tags)

    rds = aws["rds"].describe_db_instances(DBInstanceIdentifier=NAME + "-db")[
        "DBInstances"
    ][0]
    c.check(
        rds["StorageEncrypted"] and rds["KmsKeyId"] == key_arn,
        "RDS encrypted with the key",
        rds.get("KmsKeyId"),
    )
    c.check(
        rds["BackupRetentionPeriod"] == 7,
        "RDS backups kept 7 days",
        rds["BackupRetentionPeriod"],
    )
    c.check(rds["MultiAZ"] is True, "RDS Multi-AZ as asked", rds["MultiAZ"])
    c.check(
        rds["PubliclyAccessible"] is False, "RDS not public", rds["PubliclyAccessible"]
    )
    c.check(
        [g["VpcSecurityGroupId"] for g in rds["VpcSecurityGroups"]] == [db],
        "RDS in the database group only",
        rds["VpcSecurityGroups"],
    )
    rds_subnets = {s["SubnetIdentifier"] for s in rds["DBSubnetGroup"]["Subnets"]}
    private_ids = {s["SubnetId"] for s in by_tier["private"].values()}
    c.check(
        rds_subnets == private_ids, "RDS in the private subnets", sorted(rds_subnets)
    )
    c.check(owned(tags(rds.get("TagList"))), "RDS tagged", rds.get("TagList"))
    c.check(
        rds["Endpoint"]["Address"] == outputs["tradehub_database_host"],
        "database host in the outputs",
    )

    secret = aws["secretsmanager"].describe_secret(
        SecretId=out["database"]["master_secret"]
    )
    c.check(
        secret["KmsKeyId"] == key_arn,
        "secret encrypted with the key",
        secret.get("KmsKeyId"),
    )
    c.check(owned(tags(secret.get("Tags"))), "secret tagged", secret.get("Tags"))
    value = json.loads(
        aws["secretsmanager"].get_secret_value(SecretId=secret["ARN"])["SecretString"]
    )
    c.check(
        value["username"] == "tradehub_admin" and len(value["password"]) == 32,
        "secret holds the master user and a 32-character password",
        sorted(value),
    )

    s3 = aws["s3"]
    bucket = out["backup_bucket"]
    c.check(
        s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled",
        "bucket versioned",
    )
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"][
        "Rules"
    ][0]
    sse = rule["ApplyServerSideEncryptionByDefault"]
    c.check(
        sse["SSEAlgorithm"] == "aws:kms" and sse["KMSMasterKeyID"] == key_arn,
        "bucket encrypted with the key",
        sse,
    )
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    c.check(
        all(block.values()) and len(block) == 4, "bucket public access blocked", block
    )
    lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    c.check(
        any(
            r["Status"] == "Enabled"
            and r["NoncurrentVersionExpiration"]["NoncurrentDays"] == 90
            for r in lifecycle
        ),
        "lifecycle expires old versions after 90 days",
        lifecycle,
    )
    bucket_tags = tags(s3.get_bucket_tagging(Bucket=bucket)["TagSet"])
    c.check(owned(bucket_tags), "bucket tagged", bucket_tags)

    eks = aws["eks"]
    cluster = eks.describe_cluster(name=NAME)["cluster"]
    c.check(
        set(cluster["resourcesVpcConfig"]["subnetIds"]) == private_ids,
        "EKS in the private subnets",
        cluster["resourcesVpcConfig"]["subnetIds"],
    )
    c.check(owned(cluster["tags"]), "EKS cluster tagged", cluster["tags"])
    group = eks.describe_nodegroup(clusterName=NAME, nodegroupName=NAME + "-nodes")[
        "nodegroup"
    ]
    c.check(
        group["scalingConfig"] == {"minSize": 2, "maxSize": 6, "desiredSize": 3},
        "node group scaling",
        group["scalingConfig"],
    )
    c.check(owned(group["tags"]), "node group tagged", group["tags"])
    iam = aws["iam"]
    for role, policy in (
        (NAME + "-eks-cluster", "AmazonEKSClusterPolicy"),
        (NAME + "-eks-nodes", "AmazonEKSWorkerNodePolicy"),
    ):
        attached = [
            p["PolicyName"]
            for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
        ]
        c.check(policy in attached, "%s has %s" % (role, policy), attached)
        c.check(
            owned(tags(iam.list_role_tags(RoleName=role)["Tags"])), "%s tagged" % role
        )

    route53 = aws["route53"]
    zone_id = out["route53_zone_id"]
    records = route53.list_resource_record_sets(HostedZoneId=zone_id)[
        "ResourceRecordSets"
    ]
    a_records = {
        r["Name"]: sorted(v["Value"] for v in r["ResourceRecords"])
        for r in records
        if r["Type"] == "A"
    }
    wanted = {
        "%s.%s." % (n, DOMAIN): sorted(out["gateway"]["addresses"])
        for n in ["tradehub", *HUBS]
    }
    c.check(
        a_records == wanted,
        "A records of tradehub and every hub to the gateway's addresses",
        a_records,
    )
    zone_tags = tags(
        route53.list_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id)[
            "ResourceTagSet"
        ]["Tags"]
    )
    c.check(owned(zone_tags), "hosted zone tagged", zone_tags)
    eips = ec2.describe_addresses(Filters=OWNER_FILTERS)["Addresses"]
    c.check(len(eips) == 4, "two NAT and two gateway addresses, all tagged", len(eips))


def check_destroyed(aws: dict, c: Checks) -> None:
    ec2 = aws["ec2"]
    for what, items in (
        ("VPCs", ec2.describe_vpcs(Filters=OWNER_FILTERS)["Vpcs"]),
        ("subnets", ec2.describe_subnets(Filters=OWNER_FILTERS)["Subnets"]),
        (
            "internet gateways",
            ec2.describe_internet_gateways(Filters=OWNER_FILTERS)["InternetGateways"],
        ),
        (
            "route tables",
            ec2.describe_route_tables(Filters=OWNER_FILTERS)["RouteTables"],
        ),
        (
            "security groups",
            ec2.describe_security_groups(Filters=OWNER_FILTERS)["SecurityGroups"],
        ),
        ("addresses", ec2.describe_addresses(Filters=OWNER_FILTERS)["Addresses"]),
        (
            "NAT gateways",
            [
                n
                for n in ec2.describe_nat_gateways(Filters=OWNER_FILTERS)["NatGateways"]
                if n["State"] not in ("deleted", "deleting")
            ],
        ),
    ):
        mine = [
            i for i in items if tags(i.get("Tags")).get("tradehub-customer") == CUSTOMER
        ]
        c.check(mine == [], "no %s of the customer left" % what, mine)

    c.check(
        aws["eks"].list_clusters()["clusters"] == [],
        "no EKS cluster left",
        aws["eks"].list_clusters()["clusters"],
    )
    instances = aws["rds"].describe_db_instances()["DBInstances"]
    c.check(
        instances == [],
        "no RDS instance left",
        [i["DBInstanceIdentifier"] for i in instances],
    )
    groups = aws["rds"].describe_db_subnet_groups()["DBSubnetGroups"]
    c.check(
        groups == [],
        "no RDS subnet group left",
        [g["DBSubnetGroupName"] for g in groups],
    )
    secrets = aws["secretsmanager"].list_secrets()["SecretList"]
    c.check(secrets == [], "no secret left", [s["Name"] for s in secrets])
    roles = [
        r["RoleName"]
        for r in aws["iam"].list_roles()["Roles"]
        if r["RoleName"].startswith(NAME)
    ]
    c.check(roles == [], "no IAM role left", roles)
    zones = aws["route53"].list_hosted_zones()["HostedZones"]
    c.check(zones == [], "no hosted zone left", [z["Name"] for z in zones])
    buckets = sorted(b["Name"] for b in aws["s3"].list_buckets()["Buckets"])
    c.check(
        buckets == sorted(SENTINEL_BUCKETS), "only the sentinel buckets left", buckets
    )

    kms = aws["kms"]
    for key in kms.list_keys()["Keys"]:
        meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
        key_tags = {
            t["TagKey"]: t["TagValue"]
            for t in kms.list_resource_tags(KeyId=key["KeyId"])["Tags"]
        }
        if key_tags.get("tradehub-customer") == CUSTOMER:
            c.check(
                meta["KeyState"] == "PendingDeletion",
                "the customer's key scheduled for deletion",
                meta["KeyState"],
            )
        else:
            c.check(
                meta["KeyState"] == "Enabled",
                "the other customer's key untouched",
                meta["KeyState"],
            )

    cidrs = sorted(
        v["CidrBlock"] for v in ec2.describe_vpcs()["Vpcs"] if not v["IsDefault"]
    )
    c.check(
        cidrs == sorted(SENTINEL_CIDRS.values()), "the sentinel VPCs survive", cidrs
    )


def main() -> int:
    mode, endpoint = sys.argv[1], sys.argv[2]
    aws = clients(endpoint)
    if mode == "sentinels":
        make_sentinels(aws)
        print("sentinels made")
        return 0
    c = Checks()
    if mode == "provisioned":
        with open(sys.argv[3]) as handle:
            import yaml

            check_provisioned(aws, c, yaml.safe_load(handle))
    elif mode == "destroyed":
        check_destroyed(aws, c)
    else:
        raise SystemExit(
            "usage: inspect_aws.py sentinels|provisioned|destroyed ENDPOINT [OUTPUTS]"
        )
    for failure in c.failures:
        print("FAILED: " + failure)
    print("%s: %d checks passed, %d failed" % (mode, c.passed, len(c.failures)))
    return len(c.failures)


if __name__ == "__main__":
    sys.exit(main())
