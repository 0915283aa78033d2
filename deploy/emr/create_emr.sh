#!/usr/bin/env bash
# Create an EMR cluster, upload sparkify as the artifact scripts/spark-artifact.sh builds (the one the tests
# submit to a standalone cluster), and run the Spark job with it (--py-files) as a step.
#
# Credentials: the AWS CLI's own (profile, environment, SSO or instance role). Nothing secret is read,
# written or passed here; the cluster reaches S3 through its EC2 instance profile (EMR_EC2_DefaultRole).
#
#   deploy/emr/create_emr.sh --bucket my-bucket                       # the original data, lake in my-bucket
#   deploy/emr/create_emr.sh --bucket my-bucket --dry-run             # print every command, run none
#
# Options (defaults in brackets):
#   --bucket NAME        S3 bucket for the code, the logs and (by default) the lake   [required]
#   --songs URL          song_data                                    [s3://udacity-dend/song_data]
#   --logs URL           log_data                                     [s3://udacity-dend/log_data]
#   --out URL            the lake                                     [s3://BUCKET/sparkify/lake]
#   --region NAME        AWS region (the original data is in us-west-2) [us-west-2]
#   --release LABEL      EMR release; needs Spark 4.1 or later        [$SPARKIFY_EMR_RELEASE or emr-8.0.0]
#   --instance-type T    [m5.xlarge]      --instances N   core + primary nodes [3]
#   --subnet ID          EC2 subnet (default VPC if omitted)
#   --create-roles       run `aws emr create-default-roles` first (once per account)
#   --keep               keep the cluster after the step (default: terminate when done)
#   --dry-run            print the commands instead of running them
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

bucket="" songs="s3://udacity-dend/song_data" logs="s3://udacity-dend/log_data" out=""
region="us-west-2" release="${SPARKIFY_EMR_RELEASE:-emr-8.0.0}" instance_type="m5.xlarge" instances=3
subnet="" create_roles=0 keep=0 dry_run=0

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [[ $# -gt 0 ]]; do
  case $1 in
    --bucket) bucket=$2; shift 2 ;;
    --songs) songs=$2; shift 2 ;;
    --logs) logs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --region) region=$2; shift 2 ;;
    --release) release=$2; shift 2 ;;
    --instance-type) instance_type=$2; shift 2 ;;
    --instances) instances=$2; shift 2 ;;
    --subnet) subnet=$2; shift 2 ;;
    --create-roles) create_roles=1; shift ;;
    --keep) keep=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "unknown option: $1" >&2; usage 2 ;;
  esac
done
[[ -n $bucket ]] || { echo "--bucket is required" >&2; usage 2; }
[[ $bucket =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] || { echo "not an S3 bucket name: $bucket" >&2; exit 2; }
out=${out:-s3://$bucket/sparkify/lake}
code="s3://$bucket/sparkify/code"

run() {
  if [[ $dry_run -eq 1 ]]; then
    printf '%q ' "$@"; printf '\n'
  else
    "$@"
  fi
}

dist=$(mktemp -d)
trap 'rm -rf "$dist"' EXIT

# 1. The artifact the tests submit too (scripts/spark-artifact.sh): the package as one zip for --py-files,
#    the entry script, the pinned requirements the nodes install; and the node bootstrap.
run "$repo/scripts/spark-artifact.sh" "$dist"
run aws s3 cp --region "$region" "$dist/sparkify-spark.zip" "$code/sparkify-spark.zip"
run aws s3 cp --region "$region" "$dist/spark_job.py" "$code/spark_job.py"
run aws s3 cp --region "$region" "$dist/sparkify-spark-requirements.txt" "$code/sparkify-spark-requirements.txt"
run aws s3 cp --region "$region" "$here/bootstrap.sh" "$code/bootstrap.sh"

# 2. The cluster: default EMR roles, Spark with UTC settings, sparkify on every node.
if [[ $create_roles -eq 1 ]]; then
  run aws emr create-default-roles --region "$region"
fi
network=()
[[ -n $subnet ]] && network=(--ec2-attributes "SubnetId=$subnet")
lifetime=(--auto-terminate)
[[ $keep -eq 1 ]] && lifetime=(--no-auto-terminate)
on_failure=TERMINATE_CLUSTER
[[ $keep -eq 1 ]] && on_failure=CONTINUE

step="Type=Spark,Name=sparkify,ActionOnFailure=$on_failure,Args=[--deploy-mode,cluster,--py-files,$code/sparkify-spark.zip,$code/spark_job.py,--songs,$songs,--logs,$logs,--out,$out]"

run aws emr create-cluster \
  --region "$region" \
  --name sparkify \
  --release-label "$release" \
  --applications Name=Spark \
  --instance-type "$instance_type" \
  --instance-count "$instances" \
  --use-default-roles \
  "${network[@]}" \
  --log-uri "s3://$bucket/sparkify/emr-logs/" \
  --bootstrap-actions "Path=$code/bootstrap.sh,Name=sparkify,Args=[$code/sparkify-spark-requirements.txt]" \
  --configurations "file://$here/configurations.json" \
  --steps "$step" \
  "${lifetime[@]}" \
  --query ClusterId --output text

echo "submitted; follow it with: aws emr list-steps --region $region --cluster-id <the id above>" >&2
