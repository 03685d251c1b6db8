package authz

import (
	"reflect"
	"testing"
)

func TestNextActor(t *testing.T) {
	cases := []struct {
		name    string
		client  string
		subject AccessClaims
		want    *Actor
	}{
		{"another agent's own token", "C", AccessClaims{Subject: "P", ClientID: "P"}, &Actor{Subject: "C"}},
		{"a user's token held by an app", "C", AccessClaims{Subject: "U", ClientID: "A"}, &Actor{Subject: "C", Act: &Actor{Subject: "A"}}},
		{"an exchanged token, one level deeper", "G", AccessClaims{Subject: "P", ClientID: "C", Act: &Actor{Subject: "C"}},
			&Actor{Subject: "G", Act: &Actor{Subject: "C"}}},
		{"narrowing its own exchanged token", "C", AccessClaims{Subject: "P", ClientID: "C", Act: &Actor{Subject: "C"}}, &Actor{Subject: "C"}},
		{"narrowing its own token", "P", AccessClaims{Subject: "P", ClientID: "P"}, nil},
		{"its own token for a user", "C", AccessClaims{Subject: "U", ClientID: "C"}, &Actor{Subject: "C"}},
	}
	for _, c := range cases {
		if got := nextActor(c.client, &c.subject); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
	deep := &Actor{Subject: "a", Act: &Actor{Subject: "b", Act: &Actor{Subject: "c"}}}
	if deep.Depth() != 3 || !reflect.DeepEqual(deep.Chain(), []string{"c", "b", "a"}) {
		t.Fatalf("depth %d chain %v", deep.Depth(), deep.Chain())
	}
}
