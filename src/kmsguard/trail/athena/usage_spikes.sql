-- trail_usage_spike: hourly successful cryptographic calls per key and action above median + 6 * max(1.4826 * MAD,
-- 1), at least 50 calls, with at least 24 hours of baseline. The baseline is every hour from the key and action's
-- first hour to the last hour of the logs, quiet hours counted as zero; median and MAD are exact (the middle one or
-- two of the sorted hours). Reads kms_events.sql.
WITH hourly AS (
  SELECT key_arn, event_name, event_ts - event_ts % 3600 AS hour, count(*) AS n
  FROM kms_events
  WHERE is_crypto AND ok AND human AND key_arn IS NOT NULL
  GROUP BY 1, 2, 3
),
bounds AS (SELECT max(event_ts) - max(event_ts) % 3600 AS last_hour FROM kms_events),
span AS (
  SELECT key_arn, event_name, min(hour) AS first_hour FROM hourly GROUP BY 1, 2 HAVING max(n) >= 50
),
filled AS (
  SELECT s.key_arn, s.event_name, t.h AS hour, coalesce(x.n, 0) AS n
  FROM span s
  CROSS JOIN bounds b
  CROSS JOIN UNNEST(sequence(s.first_hour, b.last_hour, 3600)) AS t (h)
  LEFT JOIN hourly x ON x.key_arn = s.key_arn AND x.event_name = s.event_name AND x.hour = t.h
),
ranked AS (
  SELECT key_arn, event_name, n, row_number() OVER (PARTITION BY key_arn, event_name ORDER BY n) AS r,
         count(*) OVER (PARTITION BY key_arn, event_name) AS hours
  FROM filled
),
stats AS (
  SELECT key_arn, event_name, hours,
         (max(CASE WHEN r = floor((hours + 1) / 2.0) THEN n END)
          + max(CASE WHEN r = floor(hours / 2.0) + 1 THEN n END)) / 2.0 AS med
  FROM ranked GROUP BY key_arn, event_name, hours
),
devs AS (
  SELECT f.key_arn, f.event_name, abs(f.n - s.med) AS d, s.hours,
         row_number() OVER (PARTITION BY f.key_arn, f.event_name ORDER BY abs(f.n - s.med)) AS r
  FROM filled f JOIN stats s ON f.key_arn = s.key_arn AND f.event_name = s.event_name
),
dev AS (
  SELECT key_arn, event_name,
         (max(CASE WHEN r = floor((hours + 1) / 2.0) THEN d END)
          + max(CASE WHEN r = floor(hours / 2.0) + 1 THEN d END)) / 2.0 AS mad
  FROM devs GROUP BY key_arn, event_name
)
SELECT h.key_arn, h.event_name, h.hour, h.n, s.med, d.mad, s.hours
FROM hourly h
JOIN stats s ON h.key_arn = s.key_arn AND h.event_name = s.event_name
JOIN dev d ON h.key_arn = d.key_arn AND h.event_name = d.event_name
WHERE s.hours >= 24 AND h.n >= 50 AND h.n > s.med + 6 * greatest(1.4826 * d.mad, 1.0)
ORDER BY h.n DESC, h.key_arn, h.event_name, h.hour
