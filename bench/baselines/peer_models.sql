-- The star as a modern-stack peer writes it: five plain SQL models on the tables dlt loaded
-- (raw.songs, raw.events; dlt snake-cases the JSON keys: sessionId -> session_id). One file,
-- shared by every dlt variant: bench/baselines/dlt_peer.py splits it at the `-- model:` lines
-- and runs each SELECT as `CREATE TABLE <model> AS ...` with DuckDB, or writes each as
-- models/<model>.sql of a dbt project (the `{{ source() }}` calls are dbt's; run directly
-- they become raw.<table>). Materialised as tables.
--
-- The plain model a peer would write, deliberately: no rejects, no load accounting, no text
-- repair (mojibake stays), no trimming, no identity dedupe of events, no increments (a run
-- builds the tables from everything loaded). Not the sparkify contract.

-- model: songs
select song_id,
       any_value(title) as title,
       any_value(artist_id) as artist_id,
       nullif(any_value(year), 0) as year,
       any_value(duration) as duration
from {{ source('raw', 'songs') }}
where song_id is not null
group by song_id

-- model: artists
select artist_id,
       any_value(artist_name) as name,
       any_value(artist_location) as location,
       any_value(artist_latitude) as latitude,
       any_value(artist_longitude) as longitude
from {{ source('raw', 'songs') }}
where artist_id is not null
group by artist_id

-- model: users
-- every event with a user, the latest level (and name) by ts
select cast(user_id as integer) as user_id,
       arg_max(first_name, ts) as first_name,
       arg_max(last_name, ts) as last_name,
       arg_max(gender, ts) as gender,
       arg_max(level, ts) as level
from {{ source('raw', 'events') }}
where user_id <> ''
group by user_id

-- model: time
select start_time,
       hour(start_time) as hour,
       day(start_time) as day,
       week(start_time) as week,        -- ISO week
       month(start_time) as month,
       year(start_time) as year,
       isodow(start_time) as weekday    -- ISO weekday, Monday = 1
from (select distinct epoch_ms(ts) as start_time
      from {{ source('raw', 'events') }}
      where page = 'NextSong' and user_id <> '')

-- model: songplays
-- NextSong events, matched to a song by title, artist name and length (within 1 ms)
select md5(concat_ws('|', e.session_id, e.item_in_session, e.user_id, e.ts)) as songplay_id,
       epoch_ms(e.ts) as start_time,
       cast(e.user_id as integer) as user_id,
       e.level,
       s.song_id,
       s.artist_id,
       e.session_id,
       e.location,
       e.user_agent
from {{ source('raw', 'events') }} e
left join {{ source('raw', 'songs') }} s
  on s.title = e.song and s.artist_name = e.artist and abs(s.duration - e.length) < 0.001
where e.page = 'NextSong' and e.user_id <> ''
