package testengine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"

	"github.com/otaship/ota/internal/testengine"
)

func TestPostgresGivesAnEmptyDatabase(t *testing.T) {
	u := testengine.Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var name string
	var tables int
	if err := conn.QueryRow(ctx, `SELECT current_database(),
		(SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public')`).Scan(&name, &tables); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(name, "ota_test_") || tables != 0 {
		t.Fatalf("database %q with %d tables; want a fresh ota_test_ database", name, tables)
	}
}

func TestS3GivesAnEmptyBucket(t *testing.T) {
	s := testengine.S3(t)
	c := s.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.PutObject(ctx, s.Bucket, "k", strings.NewReader("v"), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for obj := range c.ListObjects(ctx, s.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		n++
	}
	if n != 1 {
		t.Fatalf("listed %d objects; want 1", n)
	}
}
