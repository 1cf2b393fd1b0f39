package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/pyng/receivables/apptest"
)

// A partner naming, under its own endpoint, another organisation's delivery (to retry it, or as
// the deliveries cursor) reaches nothing of it.
func TestAnotherOrganisationsDeliveryIsOutOfReachUnderOnesOwnEndpoint(t *testing.T) {
	onEachEngine(t, func(t *testing.T, s *apptest.Server) {
		victim := newPartner(t, s)
		rc, _, vd := victim.failedDelivery(t, http.StatusServiceUnavailable, "v1")

		attacker := newPartner(t, s)
		arc := newReceiver(t)
		ae := attacker.createEndpoint(t, map[string]any{"url": arc.srv.URL})
		base := "/webhook-endpoints/" + ae.EndpointID
		wantError(t, attacker.do(t, http.MethodPost, base+"/deliveries/"+vd.DeliveryID+"/retry", nil),
			http.StatusNotFound, "webhook-delivery:not-found", "deliveryId")
		wantError(t, attacker.do(t, http.MethodGet, base+"/deliveries?cursor="+cursorOf(vd.DeliveryID), nil),
			http.StatusBadRequest, "request:invalid-field", "cursor")
		time.Sleep(100 * time.Millisecond)
		if n := rc.count(); n != 1 {
			t.Errorf("the victim's endpoint was sent %d requests, want 1", n)
		}
	})
}
