-- The view every other query here reads: kmsguard's model of a KMS event (trail/decode.py, trail/detections.py)
-- over the standard CloudTrail table, the one Athena's console creates for a trail. Create it once, with
-- cloudtrail_logs replaced by your table's name. tests/trail/test_athena_sql.py runs it, and every query, against
-- the same logs kmsguard analyses and holds the answers equal.
CREATE OR REPLACE VIEW kms_events AS
WITH raw AS (
  SELECT eventid AS event_id, eventname AS event_name, eventtime AS event_time,
         CAST(floor(to_unixtime(from_iso8601_timestamp(eventtime))) AS BIGINT) AS event_ts,
         awsregion AS region, recipientaccountid AS recipient_account, errorcode AS error_code,
         useridentity.type AS principal_type, useridentity.arn AS principal_arn,
         useridentity.accountid AS principal_account, useridentity.invokedby AS invoked_by,
         sourceipaddress AS source_ip, useragent AS user_agent, requestparameters AS params,
         -- The caller: an assumed role's role (not the session), AWS services as service:NAME, and callers of
         -- other accounts logged without an ARN as account:ID.
         CASE WHEN useridentity.type = 'AWSService' THEN 'service:' || coalesce(useridentity.invokedby, 'unknown')
              WHEN useridentity.type = 'AssumedRole' AND useridentity.sessioncontext.sessionissuer IS NOT NULL
                THEN coalesce(useridentity.sessioncontext.sessionissuer.arn, useridentity.arn)
              WHEN useridentity.arn IS NOT NULL THEN useridentity.arn
              WHEN useridentity.accountid IS NOT NULL THEN 'account:' || useridentity.accountid
         END AS principal,
         eventname IN ('Decapsulate', 'Decrypt', 'DeriveSharedSecret', 'Encapsulate', 'Encrypt', 'GenerateDataKey',
                       'GenerateDataKeyPair', 'GenerateDataKeyPairWithoutPlaintext', 'GenerateDataKeyWithoutPlaintext',
                       'GenerateMac', 'ReEncrypt', 'Sign', 'Verify', 'VerifyMac') AS is_crypto,
         element_at(filter(resources, r -> r.arn LIKE '%:key/%'), 1).arn AS resource_key,
         json_extract_scalar(requestparameters, '$.keyId') AS param_key,
         json_extract_scalar(responseelements, '$.keyMetadata.arn') AS response_arn,
         json_extract_scalar(responseelements, '$.keyId') AS response_key,
         json_extract_scalar(requestparameters, '$.granteePrincipal') AS grantee,
         json_extract_scalar(requestparameters, '$.aliasName') AS alias_name,
         CASE WHEN awsregion LIKE 'us-gov-%' THEN 'aws-us-gov' WHEN awsregion LIKE 'cn-%' THEN 'aws-cn'
              WHEN awsregion LIKE 'us-isob-%' THEN 'aws-iso-b' WHEN awsregion LIKE 'us-iso-%' THEN 'aws-iso'
              ELSE 'aws' END AS partition
  FROM cloudtrail_logs
  WHERE eventsource = 'kms.amazonaws.com'
),
-- The key: the first key ARN among the resources, else the keyId asked for (a bare key id as an ARN in the
-- record's Region and account), else, for a call that is not cryptographic, the key its response names.
ids AS (
  SELECT *,
         CASE WHEN param_key LIKE 'arn:%' OR region IS NULL OR recipient_account IS NULL
                   OR NOT regexp_like(param_key, '^((mrk-)?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}|mrk-[0-9a-f]{32})$')
              THEN param_key
              ELSE 'arn:' || partition || ':kms:' || region || ':' || recipient_account || ':key/' || param_key
         END AS param_arn,
         CASE WHEN response_key LIKE 'arn:%' OR region IS NULL OR recipient_account IS NULL
                   OR NOT regexp_like(response_key, '^((mrk-)?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}|mrk-[0-9a-f]{32})$')
              THEN response_key
              ELSE 'arn:' || partition || ':kms:' || region || ':' || recipient_account || ':key/' || response_key
         END AS response_id_arn
  FROM raw
),
keyed AS (
  SELECT *, coalesce(resource_key, param_arn,
                     CASE WHEN NOT is_crypto THEN coalesce(response_arn, response_id_arn) END) AS key_arn
  FROM ids
),
-- CloudTrail delivers some events twice: an id seen again with the same name, time and outcome counts once.
ranked AS (
  SELECT *, row_number() OVER (PARTITION BY event_id, event_name, event_ts, error_code ORDER BY principal_arn) AS dup
  FROM keyed
)
SELECT event_id, event_name, event_time, event_ts, region, recipient_account, key_arn,
       CASE WHEN regexp_like(key_arn, '^([^:]*:){4}[^:]+:') THEN split_part(key_arn, ':', 5)
            ELSE recipient_account END AS key_account,
       principal, principal_arn, principal_type, principal_account, invoked_by, source_ip, user_agent, error_code,
       is_crypto, error_code IS NULL AS ok, coalesce(principal_type, 'AWSService') <> 'AWSService' AS human,
       params, grantee, alias_name
FROM ranked
WHERE event_id IS NULL OR dup = 1
