package controllers

import (
	"testing"

	. "github.com/onsi/gomega"
)

func TestParseWatchNamespaces(t *testing.T) {
	tests := []struct {
		flag    string
		want    []string
		wantErr string
	}{
		{"", nil, ""},
		{"team-a", []string{"team-a"}, ""},
		{" team-a , team-b,,team-a ", []string{"team-a", "team-b"}, ""},
		{"team-a,Team_B", nil, `"Team_B" is not a namespace name`},
	}
	for _, tt := range tests {
		t.Run(tt.flag, func(t *testing.T) {
			g := NewWithT(t)
			got, err := ParseWatchNamespaces(tt.flag)
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tt.want))
		})
	}
}
