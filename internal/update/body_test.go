package update

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestDecisionBody checks that the prepared body of an offer is exactly
// what encoding the response gives, and that refusals have none (the
// server encodes those itself).
func TestDecisionBody(t *testing.T) {
	snap := Build(fixtureState(), testURL)
	req := baseRequest()
	d := Decide(snap, &req, "")
	if d.Response.Error != "" || d.Body == nil {
		t.Fatalf("decision = %+v; want an offer with a body", d)
	}
	want, err := json.Marshal(&d.Response)
	if err != nil {
		t.Fatal(err)
	}
	if want = append(want, '\n'); !bytes.Equal(d.Body, want) {
		t.Errorf("body = %s; want %s", d.Body, want)
	}
	req.VersionName = d.Response.Version
	if d := Decide(snap, &req, ""); d.Response.Error == "" || d.Body != nil {
		t.Errorf("device on the offered version: %+v; want a refusal without a body", d)
	}
}
