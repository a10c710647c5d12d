-- Per key: calls, cryptographic calls, errors, distinct principals (not AWS services) and accounts, first/last use.
WITH kms AS (
  SELECT coalesce(element_at(filter(resources, r -> r.arn LIKE '%:key/%'), 1).arn,
                  json_extract_scalar(requestparameters, '$.keyId')) AS key_arn,
         eventname, errorcode, awsregion, useridentity.type AS principal_type,
         coalesce(useridentity.sessioncontext.sessionissuer.arn, useridentity.arn) AS principal,
         useridentity.accountid AS principal_account,
         from_iso8601_timestamp(eventtime) AS event_time
  FROM cloudtrail_logs
  WHERE eventsource = 'kms.amazonaws.com'
)
SELECT key_arn,
       count(*) AS calls,
       count_if(eventname IN ('Decrypt', 'Encrypt', 'GenerateDataKey', 'GenerateDataKeyWithoutPlaintext',
                              'GenerateDataKeyPair', 'GenerateDataKeyPairWithoutPlaintext', 'ReEncrypt',
                              'Sign', 'Verify', 'GenerateMac', 'VerifyMac', 'DeriveSharedSecret')) AS crypto_calls,
       count_if(errorcode IS NOT NULL) AS errors,
       count(DISTINCT CASE WHEN principal_type <> 'AWSService' THEN principal END) AS principals,
       count(DISTINCT CASE WHEN principal_type <> 'AWSService' THEN principal_account END) AS accounts,
       count(DISTINCT awsregion) AS regions,
       min(event_time) AS first_use,
       max(event_time) AS last_use
FROM kms
WHERE key_arn IS NOT NULL
GROUP BY key_arn
ORDER BY calls DESC
