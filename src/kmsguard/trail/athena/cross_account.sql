-- trail_cross_account_use: successful use of a key by a principal of another account (AWS services excluded).
WITH kms AS (
  SELECT element_at(filter(resources, r -> r.arn LIKE '%:key/%'), 1).arn AS key_arn,
         useridentity.accountid AS principal_account, useridentity.type AS principal_type,
         coalesce(useridentity.sessioncontext.sessionissuer.arn, useridentity.arn) AS principal, eventtime
  FROM cloudtrail_logs
  WHERE eventsource = 'kms.amazonaws.com' AND errorcode IS NULL
)
SELECT key_arn, split_part(key_arn, ':', 5) AS key_account, principal_account, count(*) AS calls,
       count(DISTINCT principal) AS principals, min(eventtime) AS first_use, max(eventtime) AS last_use
FROM kms
WHERE key_arn IS NOT NULL AND principal_type <> 'AWSService' AND principal_account IS NOT NULL
  AND principal_account <> split_part(key_arn, ':', 5)
GROUP BY key_arn, principal_account
