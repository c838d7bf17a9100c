package userdir

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
)

// BenchmarkSearch10k: searches over a directory of 10,000 remote users in
// 100 rooms of 100, half of them public; the searcher is joined to 10 of
// the private ones. The index is written directly (as the commit would),
// so the benchmark measures the search alone.
func BenchmarkSearch10k(b *testing.B) {
	ctx := context.Background()
	c, err := core.Open(ctx, core.Config{DataDir: b.TempDir(), StorageProfile: "phone", NoSyncWrites: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	d := New(c)
	first := []string{"alice", "bob", "carol", "dave", "eve", "frank", "grace", "heidi", "ivan", "judy", "mallory", "oscar", "peggy", "rupert", "sybil", "trent", "victor", "walter", "albert", "alfred"}
	last := []string{"smith", "jones", "brown", "taylor", "wilson", "davies", "evans", "thomas", "roberts", "johnson", "walker", "wright", "robinson", "thompson", "white", "hughes", "edwards", "green", "hall", "wood", "harris", "lewis", "martin", "jackson", "clarke"}
	const rooms, perRoom = 100, 100
	searcher := "@searcher:" + c.ServerName()
	for r := 0; r < rooms; r++ {
		roomID := fmt.Sprintf("!room%03d:remote.example", r)
		err := c.DB.Update(func(tx *kv.Txn) error {
			for i := 0; i < perRoom; i++ {
				u := r*perRoom + i
				userID := fmt.Sprintf("@user%05d:server%02d.example", u, u%37)
				name := fmt.Sprintf("%s %s %d", first[u%len(first)], last[(u/len(first))%len(last)], u)
				if err := setMember(tx, roomID, userID, &memberRecord{DisplayName: name, AvatarURL: "mxc://x/y"}); err != nil {
					return err
				}
			}
			if r%2 == 0 {
				return setFindable(tx, roomID, true)
			}
			if r%10 == 1 {
				return tx.SetJSON(core.MembershipKey(searcher, roomID), core.MembershipRecord{Membership: "join", EventID: "$x"})
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	for _, term := range []string{"a", "al", "alice", "alice smith", "user01234", "zzz"} {
		b.Run(term, func(b *testing.B) {
			var res Results
			for b.Loop() {
				if res, err = d.SearchUserDirectory(ctx, searcher, term, DefaultLimit); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(res.Results)), "results")
		})
	}
}
