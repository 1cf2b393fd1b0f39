package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/pyng/receivables/billing"
)

// listEvents is GET /billing/sites/{siteId}/events: the site's events, oldest first, after the
// event ?after= names, only of ?type= if given, and only those the caller's scopes may read
// (billing.EventType.Scope).
func (a *server) listEvents(w http.ResponseWriter, r *http.Request) (atSite, error) {
	return func(site billing.Site) (result, error) {
		f, err := eventFilterOf(r.URL.Query())
		if err != nil {
			return result{}, err
		}
		// Never nil, which would show every event: a caller without scopes sees none.
		f.Scopes = append([]billing.Scope{}, infoOf(r.Context()).scopes...)
		events, next, err := a.cfg.Service.Events(r.Context(), site, f)
		if billing.HasCode(err, billing.CodeInsufficientScope) { // ?type= names events it may not read
			challengeScope(w, f.Type.Scope())
		}
		if err != nil {
			return result{}, err
		}
		data := make([]json.RawMessage, len(events))
		for i, e := range events {
			data[i] = e.Body // the exact bytes the webhooks of the event signed
		}
		return result{status: http.StatusOK, body: dataEnvelope{Data: data, NextCursor: next}}, nil
	}, nil
}

// eventFilterOf reads ?after=, ?limit= and ?type=, in that order.
func eventFilterOf(query url.Values) (billing.EventFilter, error) {
	var f billing.EventFilter
	if query.Has("after") {
		if f.After = query.Get("after"); f.After == "" {
			return billing.EventFilter{}, billing.Errorf(billing.CodeInvalidField, "after", "after must be one eventId.")
		}
	}
	var err error
	if f.Limit, err = pageSize(query); err != nil {
		return billing.EventFilter{}, err
	}
	if query.Has("type") {
		if f.Type, err = billing.ParseEventType(query.Get("type")); err != nil {
			return billing.EventFilter{}, err
		}
	}
	return f, nil
}

// webhookEndpointRequest is the body of an update of an endpoint (the document's
// WebhookEndpointUpdate).
type webhookEndpointRequest struct {
	URL        *string                `json:"url"`
	EventTypes *[]*billing.EventType  `json:"eventTypes"`
	State      *billing.EndpointState `json:"state"`
}

func (req webhookEndpointRequest) domain() (billing.WebhookEndpointRequest, error) {
	types, err := eventTypes(req.EventTypes)
	return billing.WebhookEndpointRequest{URL: req.URL, EventTypes: types, State: req.State}, err
}

// newWebhookEndpointRequest is the body of a creation of an endpoint (the document's
// WebhookEndpointRequest): without state, which is request:unknown-field as any member the
// request does not take (a new endpoint is enabled).
type newWebhookEndpointRequest struct {
	URL        *string               `json:"url"`
	EventTypes *[]*billing.EventType `json:"eventTypes"`
}

func (req newWebhookEndpointRequest) domain() (billing.WebhookEndpointRequest, error) {
	types, err := eventTypes(req.EventTypes)
	return billing.WebhookEndpointRequest{URL: req.URL, EventTypes: types}, err
}

// eventTypes is the eventTypes member of an endpoint request as decoded, each type a pointer so
// that a JSON null in the list is told from a string (the decoder would take it as ""): it is
// not a type, as a number is not.
func eventTypes(decoded *[]*billing.EventType) (*[]billing.EventType, error) {
	if decoded == nil {
		return nil, nil
	}
	types := make([]billing.EventType, len(*decoded))
	for i, t := range *decoded {
		if t == nil {
			target := fmt.Sprintf("eventTypes[%d]", i)
			return nil, billing.Errorf(billing.CodeInvalidField, target, target+" must be a string.")
		}
		types[i] = *t
	}
	return &types, nil
}

func endpointWithSecret(e billing.WebhookEndpoint) billing.WebhookEndpointWithSecret {
	return billing.WebhookEndpointWithSecret{WebhookEndpointView: billing.ViewWebhookEndpoint(e), Secret: e.Secret.Reveal()}
}

// createWebhookEndpoint is POST /billing/sites/{siteId}/webhook-endpoints.
func (a *server) createWebhookEndpoint(w http.ResponseWriter, r *http.Request) (atSite, error) {
	var body newWebhookEndpointRequest
	if err := decodeJSON(w, r, &body, bodyRequired); err != nil {
		return nil, err
	}
	req, err := body.domain()
	if err != nil {
		return nil, err
	}
	return func(site billing.Site) (result, error) {
		e, err := a.cfg.Service.CreateWebhookEndpoint(r.Context(), site, req)
		if err != nil {
			return result{}, err
		}
		return result{status: http.StatusCreated, body: dataEnvelope{Data: endpointWithSecret(e)}}, nil
	}, nil
}

// listWebhookEndpoints is GET /billing/sites/{siteId}/webhook-endpoints: every endpoint of the
// site (at most billing.MaxWebhookEndpoints), oldest first.
func (a *server) listWebhookEndpoints(w http.ResponseWriter, r *http.Request) (atSite, error) {
	return func(site billing.Site) (result, error) {
		endpoints, err := a.cfg.Service.WebhookEndpoints(r.Context(), site)
		if err != nil {
			return result{}, err
		}
		data := make([]billing.WebhookEndpointView, len(endpoints))
		for i, e := range endpoints {
			data[i] = billing.ViewWebhookEndpoint(e)
		}
		return result{status: http.StatusOK, body: dataEnvelope{Data: data}}, nil
	}, nil
}

// endpointResult answers with one endpoint, or passes err on.
func endpointResult(e billing.WebhookEndpoint, err error) (result, error) {
	if err != nil {
		return result{}, err
	}
	return result{status: http.StatusOK, body: dataEnvelope{Data: billing.ViewWebhookEndpoint(e)}}, nil
}

// getWebhookEndpoint is GET .../webhook-endpoints/{endpointId}.
func (a *server) getWebhookEndpoint(w http.ResponseWriter, r *http.Request) (atSite, error) {
	return func(site billing.Site) (result, error) {
		return endpointResult(a.cfg.Service.WebhookEndpoint(r.Context(), site, r.PathValue("endpointId")))
	}, nil
}

// updateWebhookEndpoint is PATCH .../webhook-endpoints/{endpointId}: the fields sent change.
func (a *server) updateWebhookEndpoint(w http.ResponseWriter, r *http.Request) (atSite, error) {
	var body webhookEndpointRequest
	if err := decodeJSON(w, r, &body, bodyRequired); err != nil {
		return nil, err
	}
	req, err := body.domain()
	if err != nil {
		return nil, err
	}
	return func(site billing.Site) (result, error) {
		return endpointResult(a.cfg.Service.UpdateWebhookEndpoint(r.Context(), site, r.PathValue("endpointId"), req))
	}, nil
}

// deleteWebhookEndpoint is DELETE .../webhook-endpoints/{endpointId}: it answers with the endpoint
// as it was. Its body is read as the other writes without members read theirs: a client that
// sent members expecting them checked is refused, not answered with a deletion.
func (a *server) deleteWebhookEndpoint(w http.ResponseWriter, r *http.Request) (atSite, error) {
	var empty struct{}
	if err := decodeJSON(w, r, &empty, bodyOptional); err != nil {
		return nil, err
	}
	return func(site billing.Site) (result, error) {
		id := r.PathValue("endpointId")
		e, err := a.cfg.Service.WebhookEndpoint(r.Context(), site, id)
		if err != nil {
			return result{}, err
		}
		if err := a.cfg.Service.DeleteWebhookEndpoint(r.Context(), site, id); err != nil {
			return result{}, err
		}
		return endpointResult(e, nil)
	}, nil
}

// rotateWebhookSecret is POST .../webhook-endpoints/{endpointId}/secret-rotation.
func (a *server) rotateWebhookSecret(w http.ResponseWriter, r *http.Request) (atSite, error) {
	var empty struct{}
	if err := decodeJSON(w, r, &empty, bodyOptional); err != nil {
		return nil, err
	}
	return func(site billing.Site) (result, error) {
		e, err := a.cfg.Service.RotateWebhookSecret(r.Context(), site, r.PathValue("endpointId"))
		if err != nil {
			return result{}, err
		}
		return result{status: http.StatusOK, body: dataEnvelope{Data: endpointWithSecret(e)}}, nil
	}, nil
}

// listDeliveries is GET .../webhook-endpoints/{endpointId}/deliveries: newest first.
func (a *server) listDeliveries(w http.ResponseWriter, r *http.Request) (atSite, error) {
	return func(site billing.Site) (result, error) {
		query := r.URL.Query()
		var f billing.DeliveryFilter
		if query.Has("cursor") {
			before, ok := decodeCursor(query.Get("cursor"))
			if !ok {
				return result{}, invalidCursor()
			}
			f.Before = before
		}
		var err error
		if f.Limit, err = pageSize(query); err != nil {
			return result{}, err
		}
		ds, next, err := a.cfg.Service.Deliveries(r.Context(), site, r.PathValue("endpointId"), f)
		if err != nil {
			return result{}, err
		}
		data := make([]billing.DeliveryView, len(ds))
		for i, d := range ds {
			data[i] = billing.ViewDelivery(d)
		}
		body := dataEnvelope{Data: data}
		if next != "" {
			body.NextCursor = encodeCursor(next)
		}
		return result{status: http.StatusOK, body: body}, nil
	}, nil
}

// retryDelivery is POST .../deliveries/{deliveryId}/retry: another attempt, now.
func (a *server) retryDelivery(w http.ResponseWriter, r *http.Request) (atSite, error) {
	var empty struct{}
	if err := decodeJSON(w, r, &empty, bodyOptional); err != nil {
		return nil, err
	}
	return func(site billing.Site) (result, error) {
		d, err := a.cfg.Service.RetryDelivery(r.Context(), site, r.PathValue("endpointId"), r.PathValue("deliveryId"))
		if err != nil {
			return result{}, err
		}
		return result{status: http.StatusAccepted, body: dataEnvelope{Data: billing.ViewDelivery(d)}}, nil
	}, nil
}

// simulateWebhookTest is the sandbox's POST .../sandbox/webhook-endpoints/{endpointId}/test: a
// webhook.test event sent to the endpoint alone.
func (a *server) simulateWebhookTest(w http.ResponseWriter, r *http.Request) (atSite, error) {
	var empty struct{}
	if err := decodeJSON(w, r, &empty, bodyOptional); err != nil {
		return nil, err
	}
	return func(site billing.Site) (result, error) {
		d, err := a.cfg.Service.SendTestEvent(r.Context(), site, r.PathValue("endpointId"))
		if err != nil {
			return result{}, err
		}
		return result{status: http.StatusAccepted, body: dataEnvelope{Data: billing.ViewDelivery(d)}}, nil
	}, nil
}
