package testenv

import (
	"context"
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"

	identityv1alpha1 "github.com/tenantops/identity-operator/api/v1alpha1"
)

// Table lists a resource of this operator the way `kubectl get -o wide`
// sees it: the API server's Table, with the CRD's printer columns. Each row
// maps column name to cell text. namespace "" lists cluster-wide.
func (e *Env) Table(ctx context.Context, resource, namespace string) ([]string, []map[string]string, error) {
	cfg := rest.CopyConfig(e.Config)
	gv := identityv1alpha1.GroupVersion
	cfg.GroupVersion = &gv
	cfg.APIPath = "/apis"
	cfg.NegotiatedSerializer = serializer.NewCodecFactory(e.Scheme).WithoutConversion()
	rc, err := rest.RESTClientFor(cfg)
	if err != nil {
		return nil, nil, err
	}
	req := rc.Get().Resource(resource).SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	if namespace != "" {
		req = req.Namespace(namespace)
	}
	body, err := req.Do(ctx).Raw()
	if err != nil {
		return nil, nil, err
	}
	tbl := &metav1.Table{}
	if err := json.Unmarshal(body, tbl); err != nil {
		return nil, nil, err
	}
	columns := make([]string, 0, len(tbl.ColumnDefinitions))
	for _, c := range tbl.ColumnDefinitions {
		columns = append(columns, c.Name)
	}
	rows := make([]map[string]string, 0, len(tbl.Rows))
	for _, r := range tbl.Rows {
		row := map[string]string{}
		for i, c := range columns {
			if i < len(r.Cells) && r.Cells[i] != nil {
				row[c] = fmt.Sprint(r.Cells[i])
			}
		}
		rows = append(rows, row)
	}
	return columns, rows, nil
}

// Row returns the row of the named object in a Table listing, or nil.
func Row(rows []map[string]string, name string) map[string]string {
	for _, r := range rows {
		if r["Name"] == name {
			return r
		}
	}
	return nil
}
