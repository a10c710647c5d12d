-- trail_new_principal: a principal whose first successful use of a key comes more than 7 days after the key
-- first appears in the logs (each key learns its own users).
WITH kms AS (
  SELECT element_at(filter(resources, r -> r.arn LIKE '%:key/%'), 1).arn AS key_arn,
         coalesce(useridentity.sessioncontext.sessionissuer.arn, useridentity.arn) AS principal,
         useridentity.type AS principal_type, from_iso8601_timestamp(eventtime) AS event_time
  FROM cloudtrail_logs
  WHERE eventsource = 'kms.amazonaws.com' AND errorcode IS NULL
),
key_start AS (SELECT key_arn, min(event_time) AS t0 FROM kms WHERE key_arn IS NOT NULL GROUP BY key_arn),
firsts AS (
  SELECT key_arn, principal, min(event_time) AS first_use, count(*) AS calls
  FROM kms WHERE key_arn IS NOT NULL AND principal IS NOT NULL AND principal_type <> 'AWSService'
  GROUP BY key_arn, principal
)
SELECT f.key_arn, f.principal, f.first_use, f.calls
FROM firsts f JOIN key_start k ON f.key_arn = k.key_arn
WHERE f.first_use >= k.t0 + INTERVAL '7' DAY
