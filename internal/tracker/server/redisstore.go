package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis layout (prefix P, default "shoal:", H = hex info-hash):
//
//	P{H}:s4  P{H}:l4   sorted sets of IPv4 seeders / leechers; member = 6-byte compact peer,
//	P{H}:s6  P{H}:l6   score = expiry (unix seconds). Same for IPv6 (18-byte members).
//	P{H}:d             string counter: completed events ("downloaded").
//	Ptorrents          sorted set of raw info-hashes scored by their latest peer expiry.
//	Pudpsecret         the UDP connection-id secret shared by every instance.
//
// One Lua script per announce drops expired members, records or removes
// the peer, counts and samples peers (ZRANDMEMBER, Redis >= 6.2) in one
// round trip, atomically. Per-torrent keys carry a TTL of twice the peer
// TTL, so abandoned swarms vanish without a sweep. The global torrents key
// means the layout is for a single Redis (or a primary with replicas), not
// Redis Cluster.
const redisAnnounceScript = `
local now = tonumber(ARGV[1])
for i = 1, 4 do redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now) end
local s, l = KEYS[1], KEYS[2]
if ARGV[4] == '6' then s, l = KEYS[3], KEYS[4] end
local ev = ARGV[6]
local member = ARGV[3]
if ev == '3' then
  redis.call('ZREM', s, member)
  redis.call('ZREM', l, member)
else
  if ARGV[5] == '1' then
    redis.call('ZADD', s, ARGV[2], member)
    redis.call('ZREM', l, member)
  else
    redis.call('ZADD', l, ARGV[2], member)
    redis.call('ZREM', s, member)
  end
  redis.call('ZADD', KEYS[6], 'GT', ARGV[2], ARGV[8])
  redis.call('EXPIRE', s, ARGV[9])
  redis.call('EXPIRE', l, ARGV[9])
end
local dl
if ev == '1' then
  dl = redis.call('INCR', KEYS[5])
else
  dl = tonumber(redis.call('GET', KEYS[5]) or '0')
end
if ev ~= '3' and dl > 0 then redis.call('EXPIRE', KEYS[5], ARGV[9]) end
local seeders = redis.call('ZCARD', KEYS[1]) + redis.call('ZCARD', KEYS[3])
local leechers = redis.call('ZCARD', KEYS[2]) + redis.call('ZCARD', KEYS[4])
local out = {seeders, leechers, dl}
local want = tonumber(ARGV[7])
if ev == '3' or want <= 0 then return out end
local function take(key)
  local got = redis.call('ZRANDMEMBER', key, want + 1, 'WITHSCORES')
  for i = 1, #got, 2 do
    if want <= 0 then return end
    if got[i] ~= member and tonumber(got[i+1]) > now then
      out[#out + 1] = got[i]
      want = want - 1
    end
  end
end
if ARGV[5] ~= '1' then take(s) end
take(l)
return out
`

// maxRedisStatsTorrents caps how many torrents Stats counts peers of.
const maxRedisStatsTorrents = 10_000

// RedisStore keeps swarms in Redis so that several tracker processes
// serve one swarm state.
type RedisStore struct {
	rdb      *redis.Client // static after construction; safe for concurrent use
	prefix   string        // static after construction
	announce *redis.Script // static after construction
}

// NewRedisStore connects to the Redis at url ("redis://HOST:PORT/DB") and
// checks it answers. prefix namespaces the keys ("" means "shoal:").
func NewRedisStore(ctx context.Context, url, prefix string) (*RedisStore, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis store: %w", err)
	}
	if prefix == "" {
		prefix = "shoal:"
	}
	rdb := redis.NewClient(opt)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redis store %s: %w", opt.Addr, err)
	}
	return &RedisStore{rdb: rdb, prefix: prefix, announce: redis.NewScript(redisAnnounceScript)}, nil
}

func (s *RedisStore) keys(h InfoHash) []string {
	base := s.prefix + "{" + hex.EncodeToString(h[:]) + "}:"
	return []string{base + "s4", base + "l4", base + "s6", base + "l6", base + "d", s.prefix + "torrents"}
}

// Announce implements Store.
func (s *RedisStore) Announce(ctx context.Context, a PeerAnnounce, now time.Time, dst []byte) (SwarmStats, []byte, error) {
	fam := "4"
	if !a.Addr.Addr().Is4() {
		fam = "6"
	}
	seeder := "0"
	if a.Seeder {
		seeder = "1"
	}
	ttl := max(int64(a.TTL/time.Second), 1)
	member := appendCompact(nil, a.Addr)
	res, err := s.announce.Run(ctx, s.rdb, s.keys(a.InfoHash),
		now.Unix(), now.Unix()+ttl, member, fam, seeder, int(a.Event), a.NumWant, a.InfoHash[:], 2*ttl).Slice()
	if err != nil {
		return SwarmStats{}, dst, fmt.Errorf("redis announce: %w", err)
	}
	if len(res) < 3 {
		return SwarmStats{}, dst, fmt.Errorf("redis announce: short reply of %d items", len(res))
	}
	var st SwarmStats
	for i, p := range []*uint32{&st.Seeders, &st.Leechers, &st.Downloaded} {
		n, ok := res[i].(int64)
		if !ok {
			return SwarmStats{}, dst, fmt.Errorf("redis announce: reply item %d is %T", i, res[i])
		}
		*p = uint32(n)
	}
	step := compactLen(fam == "6")
	for _, m := range res[3:] {
		if b, ok := m.(string); ok && len(b) == step {
			dst = append(dst, b...)
		}
	}
	return st, dst, nil
}

// Scrape implements Store: one pipelined round trip for all hashes.
func (s *RedisStore) Scrape(ctx context.Context, hashes []InfoHash, now time.Time, dst []SwarmStats) ([]SwarmStats, error) {
	live := "(" + strconv.FormatInt(now.Unix(), 10)
	type cmds struct {
		counts [4]*redis.IntCmd
		dl     *redis.StringCmd
	}
	all := make([]cmds, len(hashes))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, h := range hashes {
			k := s.keys(h)
			for j := range 4 {
				all[i].counts[j] = p.ZCount(ctx, k[j], live, "+inf")
			}
			all[i].dl = p.Get(ctx, k[4])
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return dst, fmt.Errorf("redis scrape: %w", err)
	}
	for _, c := range all {
		var st SwarmStats
		st.Seeders = uint32(c.counts[0].Val() + c.counts[2].Val())
		st.Leechers = uint32(c.counts[1].Val() + c.counts[3].Val())
		if n, err := c.dl.Int64(); err == nil && st.Seeders+st.Leechers > 0 {
			st.Downloaded = uint32(n)
		}
		dst = append(dst, st)
	}
	return dst, nil
}

// Collect implements Store: forgets torrents whose last peer expired.
// Their keys expire by themselves; expired members of live swarms are
// dropped by the next announce and never counted by Scrape.
func (s *RedisStore) Collect(ctx context.Context, now time.Time) error {
	err := s.rdb.ZRemRangeByScore(ctx, s.prefix+"torrents", "-inf", strconv.FormatInt(now.Unix(), 10)).Err()
	if err != nil {
		return fmt.Errorf("redis collect: %w", err)
	}
	return nil
}

// Stats implements Store. Peer totals cover at most the first
// maxRedisStatsTorrents live torrents.
func (s *RedisStore) Stats(ctx context.Context, now time.Time) (StoreStats, error) {
	live := "(" + strconv.FormatInt(now.Unix(), 10)
	ids, err := s.rdb.ZRangeByScore(ctx, s.prefix+"torrents", &redis.ZRangeBy{Min: live, Max: "+inf", Count: maxRedisStatsTorrents}).Result()
	if err != nil {
		return StoreStats{}, fmt.Errorf("redis stats: %w", err)
	}
	n, err := s.rdb.ZCount(ctx, s.prefix+"torrents", live, "+inf").Result()
	if err != nil {
		return StoreStats{}, fmt.Errorf("redis stats: %w", err)
	}
	hashes := make([]InfoHash, 0, len(ids))
	for _, id := range ids {
		if len(id) == 20 {
			hashes = append(hashes, InfoHash([]byte(id)))
		}
	}
	sc, err := s.Scrape(ctx, hashes, now, nil)
	if err != nil {
		return StoreStats{}, err
	}
	st := StoreStats{Torrents: int(n)}
	for _, x := range sc {
		st.Seeders += int(x.Seeders)
		st.Leechers += int(x.Leechers)
	}
	return st, nil
}

// SharedSecret implements SecretSharer: the first instance stores a random
// secret; every instance reads the same one.
func (s *RedisStore) SharedSecret(ctx context.Context) ([]byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("udp secret: %w", err)
	}
	key := s.prefix + "udpsecret"
	if err := s.rdb.SetNX(ctx, key, b, 0).Err(); err != nil {
		return nil, fmt.Errorf("redis udp secret: %w", err)
	}
	got, err := s.rdb.Get(ctx, key).Bytes()
	if err != nil {
		return nil, fmt.Errorf("redis udp secret: %w", err)
	}
	return got, nil
}

// Close implements Store.
func (s *RedisStore) Close() error { return s.rdb.Close() }
