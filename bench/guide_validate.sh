#!/usr/bin/env bash
# The KMS guide's validation script, kept as the benchmark baseline (see /work/shared/GUIDE.md, "The guide's
# validation script"): one aws CLI process per call. It counts the keys; for each key from list-keys it
# runs describe-key twice (key manager, then key spec) and, for CUSTOMER + SYMMETRIC_DEFAULT keys,
# get-key-rotation-status; then it reports whether a multi-region trail exists and whether the rotation
# Config rule is ACTIVE.
#
# Its faults are kept on purpose, because they are what kmsguard is compared against: it flags disabled
# and pending-deletion keys (their rotation status call fails and it prints DISABLED), it looks at one
# region and calls that "the account", it ignores the Config recorder, and it silently skips keys it
# cannot describe.
#
# Two additions for the benchmark, neither of which changes what the script does per key:
#   AWS_CLI   the aws command to run (default: aws); bench_scan.py points it at its own awscli venv.
#   MAX_KEYS  only walk the first N keys of list-keys (the full walk takes more than 10 minutes for 500
#             keys; the benchmark times a sample and extrapolates per key). MAX_KEYS=0 times the constant part.
# Point it at an emulator with AWS_ENDPOINT_URL (and fake credentials), the region with AWS_DEFAULT_REGION.
set -u

AWS="${AWS_CLI:-aws}"

echo "=== KMS Configuration Validation ==="

keys=$($AWS kms list-keys --query 'Keys[*].KeyId' --output text)
total=$(echo "$keys" | wc -w)
echo "Total KMS keys: $total"

if [ -n "${MAX_KEYS:-}" ]; then
    keys=$(echo "$keys" | tr -s '\t ' '\n\n' | head -n "$MAX_KEYS")
fi

echo ""
echo "--- Key rotation ---"
for key in $keys; do
    manager=$($AWS kms describe-key --key-id "$key" --query 'KeyMetadata.KeyManager' --output text 2>/dev/null) || continue
    spec=$($AWS kms describe-key --key-id "$key" --query 'KeyMetadata.KeySpec' --output text 2>/dev/null) || continue
    if [ "$manager" = "CUSTOMER" ] && [ "$spec" = "SYMMETRIC_DEFAULT" ]; then
        rotation=$($AWS kms get-key-rotation-status --key-id "$key" --query 'KeyRotationEnabled' --output text 2>/dev/null)
        if [ "$rotation" = "True" ]; then
            echo "OK   $key: rotation enabled"
        else
            echo "FAIL $key: rotation DISABLED"
        fi
    fi
done

echo ""
echo "--- CloudTrail ---"
trails=$($AWS cloudtrail describe-trails --query 'trailList[?IsMultiRegionTrail==`true`].Name' --output text)
if [ -n "$trails" ] && [ "$trails" != "None" ]; then
    echo "OK   multi-region trail: $trails"
else
    echo "FAIL no multi-region CloudTrail trail"
fi

echo ""
echo "--- AWS Config ---"
state=$($AWS configservice describe-config-rules --config-rule-names cmk-backing-key-rotation-enabled \
    --query 'ConfigRules[0].ConfigRuleState' --output text 2>/dev/null)
if [ "$state" = "ACTIVE" ]; then
    echo "OK   cmk-backing-key-rotation-enabled is ACTIVE"
else
    echo "FAIL cmk-backing-key-rotation-enabled is not active"
fi

echo ""
echo "=== Validation complete ==="
