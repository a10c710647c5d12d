-- trail_cross_account_use: successful use of a key by a principal of another account (AWS services excluded).
-- Reads kms_events.sql.
SELECT key_arn, min(key_account) AS key_account, principal_account, count(*) AS calls,
       count(DISTINCT principal) AS principals, min(event_ts) AS first_ts, max(event_ts) AS last_ts
FROM kms_events
WHERE key_arn IS NOT NULL AND ok AND human AND principal_account IS NOT NULL AND key_account IS NOT NULL
  AND principal_account <> key_account
GROUP BY key_arn, principal_account
ORDER BY first_ts, key_arn, principal_account
