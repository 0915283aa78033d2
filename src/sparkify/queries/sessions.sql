-- Plays per session (a user's sessionId): sessions by number of plays, and the mean over all sessions (last row)
WITH per_session AS (
    SELECT user_id, session_id, COUNT(*) AS plays
    FROM songplays
    GROUP BY user_id, session_id
),
bucketed AS (
    SELECT plays,
           CASE WHEN plays = 1 THEN 1 WHEN plays <= 5 THEN 2 WHEN plays <= 10 THEN 3 WHEN plays <= 25 THEN 4
                WHEN plays <= 50 THEN 5 WHEN plays <= 100 THEN 6 ELSE 7 END AS bucket_no
    FROM per_session
)
SELECT plays_per_session, sessions, plays, min_plays, max_plays, mean_plays
FROM (
    SELECT bucket_no,
           CASE bucket_no WHEN 1 THEN '1' WHEN 2 THEN '2-5' WHEN 3 THEN '6-10' WHEN 4 THEN '11-25'
                          WHEN 5 THEN '26-50' WHEN 6 THEN '51-100' ELSE '101+' END AS plays_per_session,
           COUNT(*) AS sessions,
           CAST(SUM(plays) AS BIGINT) AS plays,
           MIN(plays) AS min_plays,
           MAX(plays) AS max_plays,
           CAST(SUM(plays) AS DOUBLE PRECISION) / COUNT(*) AS mean_plays
    FROM bucketed
    GROUP BY bucket_no
    UNION ALL
    SELECT 8, 'all', COUNT(*), CAST(SUM(plays) AS BIGINT), MIN(plays), MAX(plays),
           CAST(SUM(plays) AS DOUBLE PRECISION) / COUNT(*)
    FROM per_session
) s
ORDER BY bucket_no
