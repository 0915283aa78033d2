-- The 10 users with the most plays, their current level, sessions and first and last play
SELECT u.user_id, u.first_name, u.last_name, u.level AS current_level, COUNT(*) AS plays,
       COUNT(DISTINCT p.session_id) AS sessions, MIN(p.start_time) AS first_play, MAX(p.start_time) AS last_play
FROM songplays p
JOIN users u ON u.user_id = p.user_id
GROUP BY u.user_id, u.first_name, u.last_name, u.level
ORDER BY plays DESC, u.user_id
LIMIT 10
