-- trail_usage_spike: hourly calls per key and action above median + 6 * 1.4826 * MAD (at least 50 calls, at
-- least 24 hours of baseline). Hours without calls count as zero from the key's first hour on.
WITH kms AS (
  SELECT element_at(filter(resources, r -> r.arn LIKE '%:key/%'), 1).arn AS key_arn, eventname,
         date_trunc('hour', from_iso8601_timestamp(eventtime)) AS hour
  FROM cloudtrail_logs
  WHERE eventsource = 'kms.amazonaws.com' AND errorcode IS NULL AND useridentity.type <> 'AWSService'
    AND eventname IN ('Decrypt', 'Encrypt', 'GenerateDataKey', 'GenerateDataKeyWithoutPlaintext', 'ReEncrypt',
                      'Sign', 'Verify', 'GenerateMac', 'VerifyMac')
),
hourly AS (SELECT key_arn, eventname, hour, count(*) AS n FROM kms WHERE key_arn IS NOT NULL GROUP BY 1, 2, 3),
bounds AS (SELECT max(hour) AS last_hour FROM hourly),
span AS (SELECT key_arn, eventname, min(hour) AS first_hour FROM hourly GROUP BY 1, 2),
filled AS (
  SELECT s.key_arn, s.eventname, h AS hour, coalesce(x.n, 0) AS n
  FROM span s CROSS JOIN bounds b
  CROSS JOIN UNNEST(sequence(s.first_hour, b.last_hour, INTERVAL '1' HOUR)) AS t (h)
  LEFT JOIN hourly x ON x.key_arn = s.key_arn AND x.eventname = s.eventname AND x.hour = h
),
stats AS (SELECT key_arn, eventname, approx_percentile(n, 0.5) AS med, count(*) AS hours FROM filled GROUP BY 1, 2),
dev AS (
  SELECT f.key_arn, f.eventname, approx_percentile(abs(f.n - s.med), 0.5) AS mad
  FROM filled f JOIN stats s ON f.key_arn = s.key_arn AND f.eventname = s.eventname
  GROUP BY 1, 2
)
SELECT h.key_arn, h.eventname, h.hour, h.n, s.med, d.mad
FROM hourly h
JOIN stats s ON h.key_arn = s.key_arn AND h.eventname = s.eventname
JOIN dev d ON h.key_arn = d.key_arn AND h.eventname = d.eventname
WHERE s.hours >= 24 AND h.n >= 50 AND h.n > s.med + 6 * greatest(1.4826 * d.mad, 1)
ORDER BY h.n DESC
