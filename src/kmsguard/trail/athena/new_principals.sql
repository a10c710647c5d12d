-- trail_new_principal: a principal whose first successful use of a key comes 7 days or more after the key first
-- appears in the logs (each key learns its own users). Every such principal is listed; kmsguard reports those of an
-- account that is new to the key once, as the account (new_accounts.sql). Reads kms_events.sql.
WITH key_start AS (
  SELECT key_arn, min(event_ts) AS t0 FROM kms_events WHERE key_arn IS NOT NULL GROUP BY key_arn
),
firsts AS (
  SELECT key_arn, principal, min(principal_account) AS principal_account, min(event_ts) AS first_ts,
         count(*) AS calls
  FROM kms_events
  WHERE key_arn IS NOT NULL AND ok AND human AND principal IS NOT NULL
  GROUP BY key_arn, principal
)
SELECT f.key_arn, f.principal, f.principal_account, f.first_ts, f.calls
FROM firsts f JOIN key_start k ON f.key_arn = k.key_arn
WHERE f.first_ts >= k.t0 + 7 * 86400
ORDER BY f.first_ts, f.key_arn, f.principal
