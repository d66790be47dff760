package password

import "testing"

func TestHashesCheckOnlyTheirPassword(t *testing.T) {
	h := Hash("Secret-pw1")
	if h == Hash("Secret-pw1") {
		t.Fatal("two hashes of one password must differ (salt)")
	}
	if !Check(h, "Secret-pw1") || Check(h, "secret-pw1") || Check("garbage", "Secret-pw1") {
		t.Fatal("Check accepts only the hashed password")
	}
}

func TestPoliciesFollowThePlatformsRules(t *testing.T) {
	cases := []struct {
		policy Policy
		pw     string
		ok     bool
	}{
		{Policy{Name: "none"}, "a", true},
		{Policy{Name: "low"}, "abcde", false},
		{Policy{Name: "low"}, "abcdef", true},
		{Policy{Name: "fair"}, "abcdefgh", false},
		{Policy{Name: "fair"}, "Abcdefg1", true},
		{Policy{Name: "good"}, "abcdefg1", false},
		{Policy{Name: "good"}, "abcdefg1!", true},
		{Policy{}, "Abcdefg1", true},
		{Policy{Name: "excellent"}, "Abcdefgh1!", true},
		{Policy{Name: "excellent"}, "Abcdefff1!", false},
		{Policy{Name: "low", MinLength: 12}, "abcdefghijk", false},
	}
	for _, c := range cases {
		if got := c.policy.Check(c.pw) == ""; got != c.ok {
			t.Errorf("%+v %q: ok=%v, want %v (%s)", c.policy, c.pw, got, c.ok, c.policy.Check(c.pw))
		}
	}
}
