// Command gencommon writes users/common_passwords.txt: the ranked password list that
// github.com/trustelem/zxcvbn embeds (about 30,000 entries from real leaks), lowercased,
// deduplicated and cut to the entries a password policy could otherwise accept.
//
// It exists so the server embeds one small text file instead of linking zxcvbn, whose
// frequency package also carries large word and name lists we do not use. Regenerate with
//
//	go generate ./users/
//
// after bumping zxcvbn in go.mod.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn/frequency"
)

func main() {
	out := flag.String("o", "common_passwords.txt", "output file")
	minLen := flag.Int("min", 8, "drop entries shorter than this many code points (the policy rejects them anyway)")
	maxLen := flag.Int("max", 128, "drop entries longer than this many code points")
	flag.Parse()

	if err := write(*out, *minLen, *maxLen); err != nil {
		fmt.Fprintln(os.Stderr, "gencommon:", err)
		os.Exit(1)
	}
}

func write(path string, minLen, maxLen int) error {
	ranked, ok := frequency.FrequencyLists["passwords"]
	if !ok {
		return fmt.Errorf("zxcvbn has no %q frequency list", "passwords")
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	seen := make(map[string]bool, len(ranked))
	n := 0
	// Keep zxcvbn's rank order, most common first, so the file stays a readable ranking.
	for _, p := range ranked {
		p = strings.ToLower(strings.TrimSpace(p))
		if l := utf8.RuneCountInString(p); l < minLen || l > maxLen || seen[p] {
			continue
		}
		seen[p] = true
		n++
		if _, err := fmt.Fprintln(w, p); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "gencommon: wrote %d of %d passwords to %s\n", n, len(ranked), path)
	return nil
}
