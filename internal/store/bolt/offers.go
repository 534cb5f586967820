package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/otaship/ota/internal/store"
)

// bOffers holds what otad offered each device: device key (8 bytes,
// big-endian) → offer record. It is created by the first write, so files
// from before need no migration; a missing bucket reads as no offers.
var bOffers = []byte("offers")

// offerFormat is the first byte of an offer record. Records are binary,
// not JSON like the rest of the file: there may be millions, all read at
// every start.
//
//	format (1) | first (4) | last (4) | count (4)   Unix seconds, big-endian
//	| app | channel | version | previous | previous channel
//	                                       each a uvarint length and bytes
//
// Format 2 adds what the device's latest check said:
//
//	| seen (4) | flags (2) | running | running channel | build | plugin
const (
	offerFormat1 = 1
	offerFormat  = 2
)

func encodeOffer(o *store.DeviceOffer) []byte {
	n := len(o.AppID) + len(o.Channel) + len(o.Version) + len(o.Previous) + len(o.PreviousChannel) +
		len(o.Running) + len(o.RunningChannel) + len(o.Build) + len(o.Plugin)
	b := make([]byte, 13, 13+n+6+9)
	b[0] = offerFormat
	binary.BigEndian.PutUint32(b[1:], clampUnix(o.First))
	binary.BigEndian.PutUint32(b[5:], clampUnix(o.Last))
	binary.BigEndian.PutUint32(b[9:], uint32(max(0, min(o.Count, 1<<32-1))))
	for _, s := range [...]string{o.AppID, o.Channel, o.Version, o.Previous, o.PreviousChannel} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.BigEndian.AppendUint32(b, clampUnix(o.Seen))
	b = binary.BigEndian.AppendUint16(b, o.Flags)
	for _, s := range [...]string{o.Running, o.RunningChannel, o.Build, o.Plugin} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

func clampUnix(t time.Time) uint32 {
	s := t.Unix()
	if t.IsZero() || s < 0 {
		return 0
	}
	return uint32(min(s, 1<<32-1))
}

// unixTime is the time of Unix seconds s; 0 is no time.
func unixTime(s uint32) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(int64(s), 0).UTC()
}

var errOfferRecord = errors.New("offer record is damaged")

// decodeOffer reads a record; intern turns its strings into shared ones
// (a million records name a handful of apps, channels and versions).
func decodeOffer(key, v []byte, intern func([]byte) string) (store.DeviceOffer, error) {
	var o store.DeviceOffer
	if len(key) != 8 || len(v) < 13 || (v[0] != offerFormat && v[0] != offerFormat1) {
		return o, errOfferRecord
	}
	o.Device = binary.BigEndian.Uint64(key)
	o.First, o.Last = unixTime(binary.BigEndian.Uint32(v[1:])), unixTime(binary.BigEndian.Uint32(v[5:]))
	o.Count = int(binary.BigEndian.Uint32(v[9:]))
	rest := v[13:]
	strs := func(dsts ...*string) error {
		for _, dst := range dsts {
			n, k := binary.Uvarint(rest)
			if k <= 0 || uint64(len(rest)-k) < n {
				return errOfferRecord
			}
			*dst = intern(rest[k : k+int(n)])
			rest = rest[k+int(n):]
		}
		return nil
	}
	if err := strs(&o.AppID, &o.Channel, &o.Version, &o.Previous, &o.PreviousChannel); err != nil {
		return o, err
	}
	if v[0] == offerFormat1 {
		return o, nil
	}
	if len(rest) < 6 {
		return o, errOfferRecord
	}
	o.Seen = unixTime(binary.BigEndian.Uint32(rest))
	o.Flags = binary.BigEndian.Uint16(rest[4:])
	rest = rest[6:]
	if err := strs(&o.Running, &o.RunningChannel, &o.Build, &o.Plugin); err != nil {
		return o, err
	}
	return o, nil
}

// SaveOffers stores offer records in one transaction: a record replaces
// the one of its device key, one with neither a version nor a running
// version removes it. Records
// of apps the store does not know are dropped.
func (s *Store) SaveOffers(ctx context.Context, os []store.DeviceOffer) error {
	if len(os) == 0 {
		return nil
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bOffers)
		if err != nil {
			return fmt.Errorf("create bucket %s: %w", bOffers, err)
		}
		apps, err := appsBucket(tx)
		if err != nil {
			return err
		}
		var key [8]byte
		for i := range os {
			o := &os[i]
			binary.BigEndian.PutUint64(key[:], o.Device)
			if o.Version == "" && o.Running == "" {
				if err := b.Delete(key[:]); err != nil {
					return fmt.Errorf("remove offer %x: %w", o.Device, err)
				}
				continue
			}
			if o.AppID == "" || len(o.AppID) > maxNameLen || apps.Bucket([]byte(o.AppID)) == nil {
				continue
			}
			if err := b.Put(key[:], encodeOffer(o)); err != nil {
				return fmt.Errorf("write offer %x: %w", o.Device, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save %d offers: %w", len(os), err)
	}
	return nil
}

// LoadOffers calls fn with every stored offer record.
func (s *Store) LoadOffers(ctx context.Context, fn func(store.DeviceOffer) error) error {
	strs := map[string]string{}
	intern := func(b []byte) string {
		if s, ok := strs[string(b)]; ok {
			return s
		}
		str := string(b)
		strs[str] = str
		return str
	}
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bOffers)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			o, err := decodeOffer(k, v, intern)
			if err != nil {
				return fmt.Errorf("offer %x: %w", k, err)
			}
			return fn(o)
		})
	})
	if err != nil {
		return fmt.Errorf("load offers: %w", err)
	}
	return nil
}
