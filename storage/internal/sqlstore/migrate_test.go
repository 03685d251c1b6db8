package sqlstore

import (
	"testing"
	"testing/fstest"
)

func TestLoadMigrations(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		want    []string // names in order
		wantErr bool
	}{
		{"ordered", fstest.MapFS{"0002_b.sql": file("B"), "0001_a.sql": file("A")}, []string{"a", "b"}, false},
		{"empty", fstest.MapFS{}, nil, false},
		{"gap", fstest.MapFS{"0001_a.sql": file("A"), "0003_c.sql": file("C")}, nil, true},
		{"duplicate", fstest.MapFS{"0001_a.sql": file("A"), "001_b.sql": file("B")}, nil, true},
		{"bad name", fstest.MapFS{"init.sql": file("A")}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LoadMigrations(tc.fsys)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d migrations, want %d", len(got), len(tc.want))
			}
			for i, m := range got {
				if m.Name != tc.want[i] || m.Version != i+1 {
					t.Errorf("migration %d = %d_%s, want %d_%s", i, m.Version, m.Name, i+1, tc.want[i])
				}
			}
		})
	}
}
