package email

import (
	htmltemplate "html/template"
	texttemplate "text/template"
)

const textSource = `Hello {{.Name}},
{{if eq .Kind "signupConfirmation"}}
You have set up a direct debit agreement with {{.Site}} through Pyng, on {{.LinkedAt}}.

What you agreed: {{.Site}} may collect {{.Amounts}}, in
Australian dollars, by direct debit from your bank account (BSB {{.BSB}}, account {{.Account}}),
under its Direct Debit Request Service Agreement, attached to this email as you agreed to it
(the page at {{.AgreementURL}} shows it as it stands now).
{{if .ManageURL}}
You can see or revoke your agreement at any time at this private link{{with .Validity}} (it lasts {{.}};
after that, ask for a new one on the page it opens){{end}}:
{{.ManageURL}}
{{end}}{{else if eq .Kind "revocationConfirmation"}}
Your direct debit agreement with {{.Site}} (BSB {{.BSB}}, account {{.Account}}) ended on
{{.RevokedAt}}{{if .RevokedByCustomer}}, when you revoked it{{else if .RevokedByBank}}: your bank returned a
debit made under it, saying the account cannot be debited{{else}}: {{.Site}} ended it{{end}}.
No new debits will be sent to your bank under it; a debit sent before it ended may still be
collected. Ending it does not end what you owe {{.Site}}.

If you believe a debit made under it was wrong, you can still dispute it, as its Direct Debit
Request Service Agreement says: it is attached to this email, as you agreed to it.
{{else}}
Here is your new link to see or revoke your direct debit agreement with {{.Site}}{{with .Validity}} (it lasts {{.}}){{end}}:
{{.ManageURL}}

If you didn't ask for it, you can ignore this email: the link is only sent to you.
{{end}}{{if .ManageURL}}
Keep this email to yourself: its link is private to you. Don't forward it, or reply to it.{{end}}
Questions about your debits? Contact {{.Site}} {{.Contact}}.

Pyng collects payments by direct debit for the businesses that use it.
`

const htmlSource = `<!doctype html>
<html lang="en-AU"><head><meta charset="utf-8"><title>Pyng</title></head>
<body style="font-family: sans-serif; line-height: 1.5; max-width: 40em">
<p>Hello {{.Name}},</p>
{{if eq .Kind "signupConfirmation"}}
<p>You have set up a direct debit agreement with {{.Site}} through Pyng, on {{.LinkedAt}}.</p>
<p><strong>What you agreed:</strong> {{.Site}} may collect {{.Amounts}}, in Australian dollars, by direct debit from your bank account (BSB {{.BSB}}, account {{.Account}}), under its Direct Debit Request Service Agreement, below and attached as you agreed to it (<a href="{{.AgreementURL}}">the agreement as it stands now</a>).</p>
{{if .ManageURL}}<p><a href="{{.ManageURL}}">See or revoke your agreement</a>{{with .Validity}} (this private link lasts {{.}}; after that, ask for a new one on the page it opens){{end}}.</p>{{end}}
<h2>Direct Debit Request Service Agreement</h2>
{{range .Agreement}}<h3>{{.Heading}}</h3>
{{range .Paragraphs}}<p>{{.}}</p>
{{end}}{{end}}
{{else if eq .Kind "revocationConfirmation"}}
<p>Your direct debit agreement with {{.Site}} (BSB {{.BSB}}, account {{.Account}}) ended on {{.RevokedAt}}{{if .RevokedByCustomer}}, when you revoked it{{else if .RevokedByBank}}: your bank returned a debit made under it, saying the account cannot be debited{{else}}: {{.Site}} ended it{{end}}. No new debits will be sent to your bank under it; a debit sent before it ended may still be collected. Ending it does not end what you owe {{.Site}}.</p>
<p>If you believe a debit made under it was wrong, you can still dispute it, as its Direct Debit Request Service Agreement says: it is attached to this email, as you agreed to it.</p>
{{else}}
<p><a href="{{.ManageURL}}">Here is your new link to see or revoke your direct debit agreement with {{.Site}}</a>{{with .Validity}} (it lasts {{.}}){{end}}.</p>
<p>If you didn't ask for it, you can ignore this email: the link is only sent to you.</p>
{{end}}{{if .ManageURL}}
<p>Keep this email to yourself: its link is private to you. Don't forward it, or reply to it.</p>{{end}}
<p>Questions about your debits? Contact {{.Site}} {{.Contact}}.</p>
<p style="color: #555">Pyng collects payments by direct debit for the businesses that use it.</p>
</body></html>
`

var (
	textTemplate = texttemplate.Must(texttemplate.New("text").Parse(textSource))
	htmlTemplate = htmltemplate.Must(htmltemplate.New("html").Parse(htmlSource))
)
