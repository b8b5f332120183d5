// Start GOV.UK Frontend's components. Loaded as a module, so it runs after the page is parsed.
// The classes below are what GOV.UK Frontend's page template would set with an inline script,
// which the Content-Security-Policy does not allow.
import { initAll } from '/assets/govuk-frontend.min.js'

document.body.classList.add('js-enabled', 'govuk-frontend-supported')
initAll()
