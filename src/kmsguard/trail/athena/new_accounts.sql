-- trail_new_principal (an account): an account whose principals first use a key 7 days or more after the key
-- first appears in the logs. Reads kms_events.sql.
WITH key_start AS (
  SELECT key_arn, min(event_ts) AS t0 FROM kms_events WHERE key_arn IS NOT NULL GROUP BY key_arn
),
firsts AS (
  SELECT key_arn, principal_account, min(event_ts) AS first_ts, count(*) AS calls,
         count(DISTINCT principal) AS principals
  FROM kms_events
  WHERE key_arn IS NOT NULL AND ok AND human AND principal_account IS NOT NULL
  GROUP BY key_arn, principal_account
)
SELECT f.key_arn, f.principal_account, f.first_ts, f.calls, f.principals
FROM firsts f JOIN key_start k ON f.key_arn = k.key_arn
WHERE f.first_ts >= k.t0 + 7 * 86400
ORDER BY f.first_ts, f.key_arn, f.principal_account
