-- The 10 most played artists (only plays matched to a song of the catalogue count), with how many of their songs were played
SELECT a.artist_id, a.name AS artist, COUNT(*) AS plays, COUNT(DISTINCT p.song_id) AS songs,
       COUNT(DISTINCT p.user_id) AS listeners
FROM songplays p
JOIN artists a ON a.artist_id = p.artist_id
GROUP BY a.artist_id, a.name
ORDER BY plays DESC, a.artist_id
LIMIT 10
