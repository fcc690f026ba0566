// The sales list (/): every sale on offer with its state and availability,
// refreshed every 15 seconds (backing off while the service is busy or away).

import { api, explain, retryAfterSeconds, path } from './api.js';
import { availabilityText, availablePercent, priceFromText, saleKinds, saleListExtras } from './format.js';
import { $, badge, clear, node, show, text } from './dom.js';

const REFRESH_MS = 15000;

function saleCard(sale) {
  const li = node('li', 'card');
  li.setAttribute('data-sale', sale.id);
  const h = node('h2');
  const a = node('a', null, sale.name);
  a.href = '/s' + path(sale.id);
  h.appendChild(a);
  li.appendChild(h);

  const p = node('p');
  p.appendChild(badge(sale.state, sale.mode));
  const kinds = saleKinds(sale);
  if (kinds.length) p.appendChild(document.createTextNode(' ' + kinds.join(' · ')));
  li.appendChild(p);

  const price = priceFromText(sale);
  if (price) li.appendChild(node('p', 'price-from', price.charAt(0).toUpperCase() + price.slice(1)));

  const av = sale.availability;
  if (av && av.total > 0) {
    li.appendChild(node('p', null, availabilityText(sale)));
    const bar = node('div', 'bar');
    bar.setAttribute('aria-hidden', 'true');
    const fill = node('span');
    fill.style.width = availablePercent(av) + '%';
    bar.appendChild(fill);
    li.appendChild(bar);
  }
  const extras = saleListExtras(sale);
  if (extras) li.appendChild(node('p', 'muted small', extras));
  return li;
}

export function indexPage() {
  const list = $('sales');
  const status = $('list-status');
  let lastStatus = null;
  let delay = REFRESH_MS;

  function setStatus(msg) {
    if (msg === lastStatus) return;
    lastStatus = msg;
    text(status, msg);
    show(status, !!msg);
  }

  function render(sales) {
    clear(list);
    if (!sales.length) {
      setStatus('No sales on offer right now. Check back soon.');
      show(list, false);
      return;
    }
    for (const sale of sales) list.appendChild(saleCard(sale));
    show(list, true);
    setStatus('');
  }

  async function load() {
    try {
      const r = await api('GET', '/sales');
      if (r.ok && Array.isArray(r.data)) {
        render(r.data);
        delay = REFRESH_MS;
      } else {
        setStatus(explain(r));
        delay = (retryAfterSeconds(r.res) || 10) * 1000;
      }
    } catch {
      setStatus('Could not reach the ticket service. Retrying…');
      delay = Math.min(delay * 2, 60000);
    }
    setTimeout(load, delay);
  }
  load();
}
