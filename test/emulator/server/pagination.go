package server

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
)

// page is a parsed pagination request: offset (page, per_page,
// include_totals) or checkpoint (from, take).
type page struct {
	checkpoint    bool
	afterSeq      int64
	take          int
	page, perPage int
	includeTotals bool
}

// maxPageable is how far offset pagination may reach; past it the platform
// asks for checkpoint pagination.
const maxPageable = 1000

// parsePage reads the pagination query or answers 400.
func parsePage(w http.ResponseWriter, r *http.Request, allowCheckpoint bool) (page, bool) {
	q := r.URL.Query()
	p := page{perPage: 50, take: 50}
	num := func(name string, min, max int) (int, bool) {
		v := q.Get(name)
		n, err := strconv.Atoi(v)
		if err != nil || n < min || n > max {
			invalidQuery(w, "'"+name+"' must be an integer from "+strconv.Itoa(min)+" to "+strconv.Itoa(max))
			return 0, false
		}
		return n, true
	}
	var ok bool
	if q.Has("per_page") {
		if p.perPage, ok = num("per_page", 0, 100); !ok {
			return p, false
		}
		p.take = p.perPage
	}
	if q.Has("page") {
		if p.page, ok = num("page", 0, 1<<30); !ok {
			return p, false
		}
	}
	p.includeTotals = q.Get("include_totals") == "true"
	if allowCheckpoint && (q.Has("from") || q.Has("take")) {
		p.checkpoint = true
		if q.Has("take") { // take wins over per_page
			if p.take, ok = num("take", 1, 100); !ok {
				return p, false
			}
		}
		if f := q.Get("from"); f != "" {
			seq, err := decodeCursor(f)
			if err != nil {
				invalidQuery(w, "'from' is not a valid checkpoint")
				return p, false
			}
			p.afterSeq = seq
		}
		return p, true
	}
	if (p.page+1)*p.perPage > maxPageable && p.perPage > 0 {
		mgmtError(w, http.StatusBadRequest, "invalid_query_string",
			"You can only page through the first 1000 records. Use checkpoint pagination (from and take) to read further.")
		return p, false
	}
	return p, true
}

func encodeCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("seq:" + strconv.FormatInt(seq, 10)))
}

func decodeCursor(s string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimPrefix(string(b), "seq:"), 10, 64)
}

// project applies fields/include_fields to a document.
func project(r *http.Request, doc map[string]any) map[string]any {
	f := r.URL.Query().Get("fields")
	if f == "" {
		return doc
	}
	include := r.URL.Query().Get("include_fields") != "false"
	want := map[string]bool{}
	for _, k := range strings.Split(f, ",") {
		want[strings.TrimSpace(k)] = true
	}
	out := map[string]any{}
	for k, v := range doc {
		if want[k] == include {
			out[k] = v
		}
	}
	return out
}

// window is the offset and limit a parsed page asks the store for: one
// record more than a checkpoint page holds, to know whether there is a next.
func (p page) window() (offset, limit int) {
	if p.checkpoint {
		return 0, p.take + 1
	}
	return p.page * p.perPage, p.perPage
}

// writeList answers a list in the shape the pagination asks for: a bare
// array, {"start","limit","total",key:[...]} with totals, or
// {key:[...],"next"} with checkpoints. seqs are the items' record order,
// and total is how many match.
func writeList(w http.ResponseWriter, p page, key string, items []map[string]any, seqs []int64, total int) {
	if items == nil {
		items = []map[string]any{}
	}
	switch {
	case p.checkpoint:
		out := map[string]any{}
		if len(items) > p.take {
			items, seqs = items[:p.take], seqs[:p.take]
			out["next"] = encodeCursor(seqs[len(seqs)-1])
		}
		out[key] = items
		writeJSON(w, http.StatusOK, out)
	case p.includeTotals:
		offset, _ := p.window()
		writeJSON(w, http.StatusOK, map[string]any{"start": offset, "limit": p.perPage, "total": total, key: items})
	default:
		writeJSON(w, http.StatusOK, items)
	}
}
