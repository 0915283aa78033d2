-- Plays, active users (at least one play that day) and sessions per calendar day (UTC)
SELECT play_day AS day, COUNT(*) AS plays, COUNT(DISTINCT user_id) AS active_users,
       COUNT(DISTINCT session_key) AS sessions
FROM (
    SELECT CAST(CAST(t.year AS VARCHAR) || '-' || LPAD(CAST(t.month AS VARCHAR), 2, '0') || '-'
                || LPAD(CAST(t.day AS VARCHAR), 2, '0') AS DATE) AS play_day,
           p.user_id,
           CAST(p.user_id AS VARCHAR) || '/' || CAST(p.session_id AS VARCHAR) AS session_key
    FROM songplays p
    JOIN "time" t ON t.start_time = p.start_time
) d
GROUP BY play_day
ORDER BY play_day
