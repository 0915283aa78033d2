-- Free against paid: plays, listeners and sessions by the level the user had at the time of each play
SELECT play_level AS level, COUNT(*) AS plays, COUNT(DISTINCT user_id) AS listeners,
       COUNT(DISTINCT session_key) AS sessions
FROM (
    SELECT COALESCE(level, 'unknown') AS play_level, user_id,
           CAST(user_id AS VARCHAR) || '/' || CAST(session_id AS VARCHAR) AS session_key
    FROM songplays
) p
GROUP BY play_level
ORDER BY play_level
