package main

import (
	"context"
	"io"
)

var sandboxCommands = []command{
	{name: "sandbox signup", args: "CUSTOMER_REFERENCE", nargs: 1,
		summary: "Sign the customer up as they would with their signup link (sandbox only)",
		run: func(ctx context.Context, e *env, args []string) error {
			return showLink(e)(e.site.SimulateSignup(ctx, args[0]))
		}},
	{name: "sandbox customer-revocation", args: "CUSTOMER_REFERENCE", nargs: 1,
		summary: "Revoke the customer's link as the customer would (sandbox only)",
		run: func(ctx context.Context, e *env, args []string) error {
			return showLink(e)(e.site.SimulateCustomerRevocation(ctx, args[0]))
		}},
	{name: "sandbox deadline", args: "BATCH_REFERENCE", nargs: 1,
		summary: "Fail the batch's open rows as if its 24-hour deadline had passed (sandbox only)",
		run: func(ctx context.Context, e *env, args []string) error {
			b, err := e.site.SimulateDeadline(ctx, args[0])
			if err != nil {
				return err
			}
			return e.emit(summarise(b), func(w io.Writer) {
				s := summarise(b)
				row(w, "OUTCOME", "ROWS", "AMOUNT")
				for _, o := range s.Outcomes {
					row(w, o.name(), o.Count, dollars(o.Amount))
				}
			})
		}},
	{name: "sandbox webhook-test", args: "ENDPOINT_ID", nargs: 1,
		summary: "Send a webhook.test event to the endpoint alone (sandbox only)",
		run: func(ctx context.Context, e *env, args []string) error {
			d, err := e.site.SimulateWebhookTest(ctx, args[0])
			if err != nil {
				return err
			}
			return e.emit(d, func(w io.Writer) {
				row(w, deliveryHeader...)
				deliveryRow(w, *d)
			})
		}},
}
