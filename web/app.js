/* floodgate buyer pages: the sales list (/) and the waiting room (/s/{sale}).
 * Plain JavaScript, no dependencies. Everything shown comes from the public
 * API (/api/v1); text is always set with textContent, never as HTML. */
(function () {
  'use strict';

  var API = '/api/v1';

  // ---------------------------------------------------------------------------
  // Small helpers
  // ---------------------------------------------------------------------------

  function $(id) { return document.getElementById(id); }

  function show(el, on) { if (el) el.hidden = !on; }

  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); }

  function text(el, value) { if (el) el.textContent = value == null ? '' : String(value); }

  function node(tag, cls, content) {
    var el = document.createElement(tag);
    if (cls) el.className = cls;
    if (content != null) el.textContent = String(content);
    return el;
  }

  function plural(n, one, many) { return n + ' ' + (n === 1 ? one : many); }

  function fmtNumber(n) {
    try { return Number(n).toLocaleString(); } catch (e) { return String(n); }
  }

  // Offset between the server's clock (Date header) and ours, so countdowns
  // are right on a device whose clock is off.
  var skewMs = 0;
  function noteServerDate(res) {
    var h = res.headers.get('Date');
    if (!h) return;
    var server = Date.parse(h);
    if (isNaN(server)) return;
    var skew = server + 500 - Date.now(); // Date has one-second resolution
    skewMs = Math.abs(skew) > 1500 ? skew : 0;
  }
  function now() { return Date.now() + skewMs; }

  function fmtClock(totalSeconds) {
    var s = Math.max(0, Math.floor(totalSeconds));
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    var sec = s % 60;
    var mm = h ? String(m).padStart(2, '0') : String(m);
    return (h ? h + ':' : '') + mm + ':' + String(sec).padStart(2, '0');
  }

  function fmtLongDuration(totalSeconds) {
    var s = Math.max(0, Math.round(totalSeconds));
    var d = Math.floor(s / 86400);
    if (d >= 2) return plural(d, 'day', 'days');
    return fmtClock(s);
  }

  function fmtWait(seconds) {
    if (seconds == null) return 'estimating…';
    if (seconds <= 5) return 'any moment now';
    if (seconds < 60) return 'under a minute';
    var minutes = Math.round(seconds / 60);
    if (minutes < 60) return 'about ' + plural(minutes, 'minute', 'minutes');
    var h = Math.floor(minutes / 60);
    var m = minutes % 60;
    return 'about ' + plural(h, 'hour', 'hours') + (m ? ' ' + plural(m, 'minute', 'minutes') : '');
  }

  function fmtDate(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) return '';
    try {
      return d.toLocaleString(undefined, { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
    } catch (e) { return d.toString(); }
  }

  function randomKey() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return b.toString(16).padStart(2, '0'); }).join('');
  }

  // Seconds from a Retry-After header (seconds or HTTP date), or null.
  function retryAfterSeconds(res) {
    var h = res && res.headers && res.headers.get('Retry-After');
    if (!h) return null;
    var n = Number(h);
    if (!isNaN(n)) return Math.max(1, n);
    var at = Date.parse(h);
    return isNaN(at) ? null : Math.max(1, Math.ceil((at - Date.now()) / 1000));
  }

  /** Calls the API. Resolves to {status, ok, data, res}; rejects only when
   * the network fails (err.network = true). */
  function api(method, path, opts) {
    opts = opts || {};
    var headers = { 'Accept': 'application/json' };
    if (opts.token) headers['Authorization'] = 'Bearer ' + opts.token;
    if (opts.headers) Object.keys(opts.headers).forEach(function (k) { headers[k] = opts.headers[k]; });
    var init = { method: method, headers: headers, cache: 'no-store', credentials: 'omit' };
    if (opts.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(opts.body);
    }
    return fetch(API + path, init).then(function (res) {
      noteServerDate(res);
      return res.text().then(function (body) {
        var data = null;
        if (body) { try { data = JSON.parse(body); } catch (e) { data = null; } }
        return { status: res.status, ok: res.ok, data: data, res: res };
      });
    }, function (err) {
      var e = new Error('network: ' + (err && err.message));
      e.network = true;
      throw e;
    });
  }

  function errorOf(r) {
    var e = r && r.data && r.data.error;
    return { code: (e && e.code) || ('http_' + (r ? r.status : 0)), message: (e && e.message) || '' };
  }

  /** Plain words for an API error. */
  function plainError(r, ctx) {
    var e = errorOf(r);
    var limit = ctx && ctx.limit;
    switch (e.code) {
      case 'sold_out': return 'Sorry, this sale is sold out.';
      case 'sale_closed': return 'This sale has closed.';
      case 'limit_exceeded':
        return 'You have reached the limit' + (limit ? ' of ' + plural(limit, 'ticket', 'tickets') : '') +
          ' per person for this sale.';
      case 'insufficient_stock': return 'There aren’t that many tickets left. Try a smaller number.';
      case 'hold_expired': return 'Your hold has expired, and the tickets went back on sale.';
      case 'sale_paused': return 'The sale is paused for a moment. Please try again shortly.';
      case 'seat_taken':
        return 'Some of those seats were just taken. Please choose others.' + (e.message ? ' (' + e.message + ')' : '');
      case 'seat_not_released': return 'Some of those seats are not on sale yet. ' + e.message;
      case 'sale_not_started': return 'The sale has not started yet.';
      case 'lottery_drawn': return 'The lottery has been drawn; entries are closed.';
      case 'refund_required': return 'The payment came too late: your hold had already expired. You will not be charged.';
      case 'hold_confirmed': return 'This hold was already paid.';
      case 'rate_limited': return 'Lots of people are here right now. Please wait a moment and try again.';
      case 'service_unavailable': return 'The ticket service is busy. Please try again in a moment.';
      case 'unauthorized': return 'Your pass for this step is no longer valid.';
      case 'invalid_request': return e.message ? 'That didn’t work: ' + e.message + '.' : 'That request was not valid.';
      default:
        if (r && r.status >= 500) return 'Something went wrong on our side. Please try again.';
        return e.message ? e.message.charAt(0).toUpperCase() + e.message.slice(1) + '.' : 'Something went wrong (' + e.code + ').';
    }
  }

  function stateLabel(state, mode) {
    if (state === 'scheduled' && mode === 'lottery') return 'Entries open';
    return ({ scheduled: 'Opens soon', on_sale: 'On sale', paused: 'Paused', sold_out: 'Sold out', closed: 'Closed' })[state] || state;
  }

  function badge(state, mode) { return node('span', 'badge ' + state, stateLabel(state, mode)); }

  function availabilityText(sale) {
    var a = sale.availability;
    if (!a) return '';
    var parts = [fmtNumber(a.available) + ' of ' + fmtNumber(a.total) + ' available'];
    if (a.unreleased > 0) parts.push(fmtNumber(a.unreleased) + ' released later');
    return parts.join(' · ');
  }

  // ---------------------------------------------------------------------------
  // Page: the sales list
  // ---------------------------------------------------------------------------

  function indexPage() {
    var list = $('sales');
    var status = $('list-status');
    var lastStatus = null;
    function setStatus(msg) { if (msg !== lastStatus) { lastStatus = msg; text(status, msg); show(status, !!msg); } }

    function render(sales) {
      clear(list);
      if (!sales.length) {
        setStatus('No sales on offer right now. Check back soon.');
        show(list, false);
        return;
      }
      sales.forEach(function (sale) {
        var li = node('li', 'card');
        li.setAttribute('data-sale', sale.id);
        var h = node('h2');
        var a = node('a', null, sale.name);
        a.href = '/s/' + encodeURIComponent(sale.id);
        h.appendChild(a);
        li.appendChild(h);

        var p = node('p');
        p.appendChild(badge(sale.state, sale.mode));
        var kinds = [];
        if (sale.mode === 'lottery') kinds.push('Lottery');
        if (sale.seating === 'reserved') kinds.push('Reserved seating');
        if (kinds.length) p.appendChild(document.createTextNode(' ' + kinds.join(' · ')));
        li.appendChild(p);

        var av = sale.availability;
        if (av && av.total > 0) {
          li.appendChild(node('p', null, availabilityText(sale)));
          var bar = node('div', 'bar');
          bar.setAttribute('aria-hidden', 'true');
          var fill = node('span');
          fill.style.width = Math.round(100 * av.available / av.total) + '%';
          bar.appendChild(fill);
          li.appendChild(bar);
        }
        var extra = [];
        if (sale.state === 'scheduled' && sale.starts_at) {
          extra.push((sale.mode === 'lottery' ? 'Entries close ' : 'Opens ') + fmtDate(sale.starts_at));
        }
        if (sale.queue && sale.queue.length > 0) {
          extra.push(plural(sale.queue.length, 'person', 'people') + ' in line');
          if (sale.estimated_wait_seconds != null) extra.push('wait ' + fmtWait(sale.estimated_wait_seconds));
        }
        if (extra.length) li.appendChild(node('p', 'muted small', extra.join(' · ')));
        list.appendChild(li);
      });
      show(list, true);
      setStatus('');
    }

    var delay = 15000;
    function load() {
      api('GET', '/sales').then(function (r) {
        if (r.ok && Array.isArray(r.data)) {
          render(r.data);
          delay = 15000;
        } else {
          setStatus(plainError(r));
          delay = (retryAfterSeconds(r.res) || 10) * 1000;
        }
      }, function () {
        setStatus('Could not reach the ticket service. Retrying…');
        delay = Math.min(delay * 2, 60000);
      }).then(function () { setTimeout(load, delay); });
    }
    load();
  }

  // ---------------------------------------------------------------------------
  // Page: the waiting room of one sale
  // ---------------------------------------------------------------------------

  function salePage() {
    var parts = location.pathname.split('/');
    var saleId = decodeURIComponent(parts[2] || '');
    var storeKey = 'floodgate:sale:' + saleId;

    var sale = null; // GET /sales/{sale}
    var memory = {}; // fallback when localStorage is unavailable
    var pollTimer = null;
    var pollBackoff = 2000;
    var polling = false;
    var currentView = 'loading';
    var firstView = true;
    var admission = null; // { token, expiresAt }
    var pendingHold = null; // { key, body } of an attempt whose answer was lost
    var lastLive = '';
    var timers = {}; // name -> { at: ms, el, onEnd, progress?, total? }

    // --- storage: the queue token, the hold and the order survive a reload ---
    function load() {
      try {
        var raw = window.localStorage.getItem(storeKey);
        return raw ? JSON.parse(raw) : {};
      } catch (e) { return memory; }
    }
    function save(patch) {
      var st = load();
      Object.keys(patch).forEach(function (k) {
        if (patch[k] === undefined) delete st[k]; else st[k] = patch[k];
      });
      memory = st;
      try { window.localStorage.setItem(storeKey, JSON.stringify(st)); } catch (e) { /* memory only */ }
      return st;
    }

    // --- views ---
    var VIEWS = ['loading', 'join', 'queue', 'buy', 'hold', 'order', 'end'];
    function setView(name) {
      if (name !== currentView) {
        VIEWS.forEach(function (v) { show($('view-' + v), v === name); });
        currentView = name;
        document.body.setAttribute('data-view', name);
        // Move focus to the new step's heading so keyboard and screen-reader
        // users land on it; not on the first view, to leave page load alone.
        if (!firstView) {
          var heading = document.querySelector('#view-' + name + ' h2');
          if (heading) heading.focus();
        }
        firstView = firstView && name === 'loading';
      }
    }

    var alertBox = $('alert');
    function showAlert(msg, kind) {
      text(alertBox, msg);
      alertBox.className = 'alert' + (kind ? ' ' + kind : '');
      show(alertBox, !!msg);
    }
    function clearAlert() { showAlert(''); }
    function announce(msg) {
      var el = $('announce');
      text(el, '');
      setTimeout(function () { text(el, msg); }, 50);
    }

    function busy(button, on) {
      button.disabled = on;
      button.setAttribute('aria-busy', on ? 'true' : 'false');
    }

    // --- countdowns: one ticker drives every visible countdown ---
    // `warn`: {seconds, message} said once through the live region when that
    // little time is left (a role=timer is not read out on its own).
    function setTimer(name, atIso, el, onEnd, progress, totalSeconds, warn) {
      var at = Date.parse(atIso);
      if (isNaN(at)) { delete timers[name]; text(el, '–'); return; }
      if (timers[name] && timers[name].at === at && timers[name].el === el) return; // already running
      timers[name] = { at: at, el: el, onEnd: onEnd, progress: progress, total: totalSeconds, done: false, warn: warn };
      tick();
    }
    function stopTimer(name) { delete timers[name]; }
    function tick() {
      Object.keys(timers).forEach(function (name) {
        var t = timers[name];
        var left = (t.at - now()) / 1000;
        var shown = left > 86400 ? fmtLongDuration(left) : fmtClock(Math.ceil(Math.max(0, left)));
        if (shown !== t.shown) { t.shown = shown; text(t.el, shown); }
        if (t.warn) {
          var urgent = left <= t.warn.seconds;
          t.el.classList.toggle('urgent', urgent);
          if (urgent && !t.warned && left > 0) { t.warned = true; announce(t.warn.message); }
        }
        if (t.progress && t.total > 0) {
          t.progress.max = t.total;
          t.progress.value = Math.max(0, Math.min(t.total, left));
        }
        if (left <= 0 && !t.done) {
          t.done = true;
          if (t.onEnd) t.onEnd();
        }
      });
    }
    // Four times a second, so the shown second changes on time; text is only
    // written when it changes.
    setInterval(tick, 250);

    // --- the sale itself ---
    function renderSale() {
      if (!sale) return;
      text($('sale-name'), sale.name);
      document.title = sale.name + ' · floodgate';
      var meta = $('sale-meta');
      clear(meta);
      meta.appendChild(badge(sale.state, sale.mode));
      var bits = [];
      if (sale.mode === 'lottery') bits.push('Lottery');
      if (sale.seating === 'reserved') bits.push('Reserved seating');
      var av = availabilityText(sale);
      if (av) bits.push(av);
      if (sale.per_user_limit) bits.push('up to ' + sale.per_user_limit + ' per person');
      meta.appendChild(document.createTextNode(' ' + bits.join(' · ')));
    }

    function fetchSale() {
      return api('GET', '/sales/' + encodeURIComponent(saleId)).then(function (r) {
        if (r.ok && r.data) { sale = r.data; renderSale(); return sale; }
        if (r.status === 404) return null;
        throw r;
      });
    }

    // --- terminal and informational screens ---
    function showEnd(title, body, button) {
      stopPolling();
      stopTimer('admission');
      text($('end-title'), title);
      text($('end-text'), body);
      var btn = $('end-btn');
      if (button) {
        text(btn, button.label);
        btn.onclick = button.action;
        show(btn, true);
      } else {
        btn.onclick = null;
        show(btn, false);
      }
      setView('end');
    }

    function soldOut(keepChecking) {
      showEnd('Sold out', 'Sorry, every ticket for this sale has been sold.' +
        (keepChecking ? ' We’ll keep checking in case tickets come back.' : ''));
      if (sale && sale.state !== 'sold_out') { sale.state = 'sold_out'; renderSale(); }
    }
    function closed() {
      showEnd('This sale has closed', 'Tickets for this sale are no longer on offer.');
    }

    // --- joining ---
    function showJoin(message) {
      stopPolling();
      if (sale && sale.mode === 'lottery') {
        text($('join-title'), 'Enter the lottery');
        text($('join-text'), 'Winners are drawn at random when entries close' +
          (sale.starts_at ? ' (' + fmtDate(sale.starts_at) + ')' : '') + '. It doesn’t matter when you enter.');
        text($('join-btn'), 'Enter the lottery');
      } else if (sale && sale.waiting_room === false) {
        text($('join-title'), 'Get tickets');
        text($('join-text'), sale.state === 'scheduled'
          ? 'The sale opens ' + fmtDate(sale.starts_at) + '.'
          : 'Tickets go to whoever holds them first.');
        text($('join-btn'), 'Get tickets');
      } else if (sale && sale.state === 'scheduled') {
        text($('join-text'), 'The sale opens ' + fmtDate(sale.starts_at) + '. Join the waiting room now and you’ll get a place in line when it opens.');
      }
      if (message) showAlert(message, 'info'); else clearAlert();
      setView('join');
    }

    function join() {
      var btn = $('join-btn');
      busy(btn, true);
      clearAlert();
      var st = load();
      api('POST', '/sales/' + encodeURIComponent(saleId) + '/queue', { token: st.queue_token }).then(function (r) {
        busy(btn, false);
        if (r.status === 200 || r.status === 201) {
          save({ queue_token: r.data.queue_token, start_ahead: r.status === 201 || st.start_ahead == null ? r.data.ahead : st.start_ahead });
          renderStatus(r.data);
          if (polling || currentView === 'queue' || currentView === 'buy') schedulePoll(r.data);
          return;
        }
        var e = errorOf(r);
        if (e.code === 'sold_out') return soldOut(false);
        if (e.code === 'sale_closed') return closed();
        if (e.code === 'lottery_drawn') return showEnd('Entries are closed', 'The lottery has been drawn, so new entries are closed.');
        if ((r.status === 401 || r.status === 403) && st.queue_token) {
          // A token from an earlier visit that no longer works: start afresh.
          save({ queue_token: undefined, start_ahead: undefined });
          return join();
        }
        if (r.status === 429 || r.status === 503) {
          var wait = retryAfterSeconds(r.res) || 3;
          showAlert(plainError(r) + ' Trying again in ' + plural(wait, 'second', 'seconds') + '…', 'info');
          busy(btn, true);
          setTimeout(join, wait * 1000);
          return;
        }
        showAlert(plainError(r));
      }, function () {
        busy(btn, false);
        showAlert('Could not reach the ticket service. Check your connection and try again.');
      });
    }

    // --- polling the place in line ---
    function stopPolling() {
      polling = false;
      if (pollTimer) clearTimeout(pollTimer);
      pollTimer = null;
    }

    function schedulePoll(view, overrideMs) {
      if (pollTimer) clearTimeout(pollTimer);
      polling = true;
      var ms = overrideMs != null ? overrideMs : Math.max(1000, (view && view.poll_after_ms) || 2000);
      // A little jitter so a crowd that joined together does not poll in step.
      ms = Math.round(ms * (1 + Math.random() * 0.1));
      pollTimer = setTimeout(poll, ms);
    }

    function poll() {
      pollTimer = null;
      var st = load();
      if (!st.queue_token) { polling = false; return showJoin(); }
      api('GET', '/sales/' + encodeURIComponent(saleId) + '/queue/status', { token: st.queue_token }).then(function (r) {
        if (!polling && currentView !== 'loading') return;
        if (r.ok && r.data) {
          pollBackoff = 2000;
          if (currentView === 'queue' || currentView === 'loading' || currentView === 'buy' || currentView === 'end') clearAlertIfTransient();
          renderStatus(r.data);
          if (polling || currentView === 'loading') schedulePoll(r.data);
          return;
        }
        if (r.status === 401 || r.status === 403) {
          save({ queue_token: undefined, start_ahead: undefined });
          return showJoin('Your place in line could not be found any more. Please join again.');
        }
        if (r.status === 404) return showEnd('Sale not found', 'This sale does not exist or is no longer on offer.');
        if (r.status === 429 || r.status === 503) {
          var wait = retryAfterSeconds(r.res) || 2;
          showAlert('The ticket service is very busy. Checking again shortly… you keep your place.', 'info');
          transientAlert = true;
          return schedulePoll(null, wait * 1000);
        }
        pollBackoff = Math.min(pollBackoff * 2, 30000);
        schedulePoll(null, pollBackoff);
      }, function () {
        // Offline or the server is unreachable: keep the place, try again.
        pollBackoff = Math.min(pollBackoff * 2, 30000);
        showAlert('Connection lost. Trying again… you keep your place.', 'info');
        transientAlert = true;
        schedulePoll(null, pollBackoff);
      });
    }
    var transientAlert = false;
    function clearAlertIfTransient() { if (transientAlert) { clearAlert(); transientAlert = false; } }

    function renderStatus(v) {
      switch (v.state) {
        case 'waiting': return renderWaiting(v);
        case 'admitted':
        case 'won': return renderAdmitted(v);
        case 'lost':
          return showEnd('Not this time', 'You were not drawn in the lottery. Thanks for taking part.');
        case 'expired':
          return showEnd('Your place has expired',
            'You were away too long, or your turn ran out before tickets were held, so your place went to the next person.',
            { label: 'Join again', action: function () { save({ queue_token: undefined, start_ahead: undefined }); showJoin(); join(); } });
        case 'sold_out':
          soldOut(true);
          polling = true; // keep checking slowly: cancellations can bring tickets back
          return;
        case 'closed':
          return closed();
        default:
          return showEnd('Unexpected answer', 'The ticket service said “' + v.state + '”. Please reload the page.');
      }
    }

    function renderWaiting(v) {
      admission = null;
      stopTimer('admission');
      var lottery = sale && sale.mode === 'lottery';
      var st = load();
      var ahead = v.ahead == null ? null : v.ahead;
      var position = v.position == null ? null : v.position;
      if (ahead != null && (st.start_ahead == null || ahead > st.start_ahead)) st = save({ start_ahead: ahead });

      text($('queue-title'), lottery ? 'You’re entered in the lottery' : (v.prequeue ? 'You’re in the waiting room' : 'You’re in line'));
      // In a pre-queue that is shuffled at the start, the join order means
      // nothing yet: show no number until the draw.
      var shuffled = v.prequeue && sale && sale.shuffle_prequeue;
      var showPlace = !lottery && !shuffled && position != null;
      show($('q-place'), showPlace);
      show($('q-progress-box'), showPlace && !v.prequeue);
      show($('q-facts'), showPlace);
      text($('q-number'), position != null ? fmtNumber(position) : '–');
      text($('q-ahead'), ahead != null ? fmtNumber(ahead) : '–');
      text($('q-wait'), v.paused ? 'paused' : (v.prequeue ? 'after the start' : fmtWait(v.estimated_wait_seconds)));

      if (showPlace && !v.prequeue) {
        var start = Math.max(st.start_ahead || 0, ahead || 0);
        var bar = $('q-progress');
        bar.max = start + 1;
        bar.value = start + 1 - (ahead || 0) - 0.5;
        bar.setAttribute('aria-valuetext', (ahead === 0 ? 'You are next' : plural(ahead, 'person', 'people') + ' ahead'));
      }

      var live;
      if (lottery) {
        live = 'You’re entered. Winners are drawn when entries close.';
      } else if (v.prequeue) {
        live = 'You’re in the waiting room. ' + (sale && sale.shuffle_prequeue
          ? 'When the sale opens, everyone here gets a random place in line ahead of later arrivals.'
          : 'Your place in line is ' + fmtNumber(position) + '.');
      } else if (ahead === 0) {
        live = 'You’re next! Your place is 1.';
      } else {
        live = 'Your place in line is ' + fmtNumber(position) + '. ' + plural(ahead, 'person is', 'people are') + ' ahead of you. ' +
          (v.estimated_wait_seconds == null || v.paused ? 'Estimating the wait…' : 'Estimated wait: ' + fmtWait(v.estimated_wait_seconds) + '.');
      }
      if (v.paused) live += ' The sale is paused.';
      if (live !== lastLive) { lastLive = live; text($('q-live'), live); }

      var pre = v.prequeue || (sale && sale.state === 'scheduled');
      show($('q-prequeue'), !!(pre && sale && sale.starts_at));
      if (pre && sale && sale.starts_at) {
        text($('q-prequeue-lead'), lottery ? 'Entries close in' : 'The sale opens in');
        text($('q-prequeue-note'), lottery ? 'The draw happens then.' : (sale.shuffle_prequeue ? 'Everyone who joins before then gets a fair, random place.' : ''));
        setTimer('prequeue', sale.starts_at, $('q-countdown'), function () {
          text($('q-countdown'), 'now');
          // The server turns the sale on: pick up the new state soon.
          fetchSale().catch(function () {});
          if (polling) schedulePoll(null, 1000);
        });
      } else {
        stopTimer('prequeue');
      }
      show($('q-paused'), !!v.paused);
      setView('queue');
    }

    function renderAdmitted(v) {
      stopTimer('prequeue');
      if (v.admission_token) {
        admission = { token: v.admission_token, expiresAt: v.admission_expires_at };
      }
      text($('buy-title'), v.state === 'won' ? 'You won! Choose your tickets' : 'It’s your turn');
      // Without a waiting room every poll grants a fresh admission, so there
      // is no deadline worth showing.
      if (v.admission_expires_at && !(sale && sale.waiting_room === false)) {
        show($('buy-deadline'), true);
        setTimer('admission', v.admission_expires_at, $('buy-countdown'), function () {
          // Ask the server what happened rather than guessing.
          if (currentView === 'buy') schedulePoll(null, 500);
        }, null, 0, { seconds: 30, message: '30 seconds left to choose your tickets.' });
      } else {
        show($('buy-deadline'), false);
      }
      if (currentView !== 'buy') {
        buildBuyForm();
        setView('buy');
        // Fresh availability for the picker; not needed for the hold itself.
        fetchSale().then(function () { if (currentView === 'buy') buildBuyForm(true); }).catch(function () {});
      }
    }

    // --- choosing and holding tickets ---
    function buildBuyForm(refresh) {
      var limit = Math.max(1, (sale && sale.per_user_limit) || 1);
      var available = sale && sale.availability ? sale.availability.available : null;
      var reserved = sale && sale.seating === 'reserved';
      show($('qty-field'), !reserved);
      show($('seats-field'), reserved);
      if (reserved) {
        text($('seats-hint'), 'Type seat labels as section/row/seat, separated by commas, e.g. A/1/3, A/1/4. Up to ' +
          plural(limit, 'seat', 'seats') + ' per person.');
        return;
      }
      var max = limit;
      if (available != null && available > 0) max = Math.min(limit, available);
      var select = $('qty');
      var previous = Number(select.value) || 1;
      if (refresh && select.options.length === max) return;
      clear(select);
      for (var i = 1; i <= max; i++) {
        var opt = node('option', null, plural(i, 'ticket', 'tickets'));
        opt.value = String(i);
        select.appendChild(opt);
      }
      select.value = String(Math.min(previous, max));
      text($('qty-hint'), 'Up to ' + plural(limit, 'ticket', 'tickets') + ' per person.' +
        (available != null && available < limit ? ' ' + fmtNumber(available) + ' left right now.' : ''));
    }

    function holdRequestBody() {
      if (sale && sale.seating === 'reserved') {
        var seen = {};
        var seats = $('seats').value.split(/[\s,;]+/).map(function (s) { return s.trim(); })
          .filter(function (s) { if (!s || seen[s]) return false; seen[s] = true; return true; });
        if (!seats.length) return { error: 'Enter at least one seat, like A/1/3.' };
        var limit = (sale && sale.per_user_limit) || seats.length;
        if (seats.length > limit) return { error: 'You can choose up to ' + plural(limit, 'seat', 'seats') + '.' };
        var bad = seats.filter(function (s) { return !/^[^/]+\/[^/]+\/[^/]+$/.test(s); });
        if (bad.length) return { error: 'Seat labels look like A/1/3 (section/row/seat). Check: ' + bad.join(', ') + '.' };
        return { body: { seats: seats } };
      }
      var q = Number($('qty').value);
      if (!(q >= 1)) return { error: 'Choose how many tickets you want.' };
      return { body: { quantity: q } };
    }

    function hold(event) {
      event.preventDefault();
      clearAlert();
      var btn = $('hold-btn');
      var req = holdRequestBody();
      if (req.error) {
        showAlert(req.error);
        var field = sale && sale.seating === 'reserved' ? $('seats') : $('qty');
        field.setAttribute('aria-invalid', 'true');
        field.focus();
        return;
      }
      $('seats').removeAttribute('aria-invalid');
      if (!admission || !admission.token) {
        showAlert('Your turn has not come yet, or it ran out. Checking your place…', 'info');
        return schedulePoll(null, 0);
      }
      // One key per attempt; a retry after a lost answer reuses it, so the
      // server answers it instead of holding twice.
      var bodyJson = JSON.stringify(req.body);
      var key = pendingHold && pendingHold.body === bodyJson ? pendingHold.key : randomKey();
      pendingHold = { key: key, body: bodyJson };
      busy(btn, true);
      api('POST', '/sales/' + encodeURIComponent(saleId) + '/holds', {
        token: admission.token,
        headers: { 'Idempotency-Key': key },
        body: req.body
      }).then(function (r) {
        busy(btn, false);
        if (r.status === 201 || r.status === 200) {
          pendingHold = null;
          var h = r.data;
          save({ hold: { id: h.id, hold_token: h.hold_token, expires_at: h.expires_at, units: h.units, quantity: h.quantity } });
          stopPolling();
          // Counts are cached for about a second: refresh the header after.
          setTimeout(function () { fetchSale().catch(function () {}); }, 1500);
          return showHold(load().hold);
        }
        if (r.status < 500 && r.status !== 429) pendingHold = null;
        var e = errorOf(r);
        if (e.code === 'sold_out') return soldOut(false);
        if (e.code === 'sale_closed') return closed();
        if (r.status === 401 || r.status === 403) {
          showAlert('Your turn ran out before the tickets were held. Checking your place…', 'info');
          return schedulePoll(null, 0);
        }
        var msg = plainError(r, { limit: sale && sale.per_user_limit });
        if (r.status === 429 || r.status === 503) {
          var wait = retryAfterSeconds(r.res);
          if (wait) msg += ' (try again in ' + plural(wait, 'second', 'seconds') + ')';
        }
        showAlert(msg);
        if (e.code === 'insufficient_stock') fetchSale().then(function () { buildBuyForm(); }).catch(function () {});
      }, function () {
        busy(btn, false);
        showAlert('Could not reach the ticket service. Your request may not have arrived: press “Hold tickets” again to retry safely.');
      });
    }

    // --- the hold: countdown, pay, release ---
    function showHold(h) {
      clearAlert();
      var list = $('hold-units');
      clear(list);
      (h.units || []).forEach(function (u) { list.appendChild(node('li', null, u.label)); });
      text($('hold-title'), 'Your ' + (h.quantity === 1 ? 'ticket is' : plural(h.quantity || (h.units || []).length, 'ticket', 'tickets') + ' are') + ' held');
      var ttl = (sale && sale.hold_ttl_seconds) || Math.max(1, (Date.parse(h.expires_at) - now()) / 1000);
      setTimer('hold', h.expires_at, $('hold-countdown'), holdExpired, $('hold-progress'), ttl,
        { seconds: 60, message: 'One minute left to pay before the tickets go back on sale.' });
      busy($('pay-btn'), false);
      busy($('release-btn'), false);
      setView('hold');
    }

    function holdExpired() {
      stopTimer('hold');
      save({ hold: undefined });
      showEnd('Your hold has expired', 'The time to pay ran out, so the tickets went back on sale.',
        { label: 'Check my place', action: resumeQueue });
    }

    function resumeQueue() {
      clearAlert();
      setView('loading');
      schedulePoll(null, 0);
    }

    function pay() {
      var h = load().hold;
      if (!h) return;
      var btn = $('pay-btn');
      busy(btn, true);
      clearAlert();
      api('POST', '/holds/' + encodeURIComponent(h.id) + '/dev-checkout', { token: h.hold_token }).then(function (r) {
        if (r.ok && r.data && r.data.order) {
          var order = r.data.order;
          stopTimer('hold');
          save({ order: { id: order.id, hold_token: h.hold_token }, hold: undefined });
          return showOrder(order, true);
        }
        busy(btn, false);
        var e = errorOf(r);
        if (r.status === 404 && /dev checkout/i.test(e.message)) {
          return showAlert('Payment is handled by the site that sent you here; this page cannot take payments. Your tickets stay held until the countdown ends.', 'info');
        }
        if (e.code === 'hold_expired' || e.code === 'refund_required') {
          stopTimer('hold');
          save({ hold: undefined });
          return showEnd('Your hold has expired', plainError(r), { label: 'Check my place', action: resumeQueue });
        }
        showAlert(plainError(r));
      }, function () {
        busy(btn, false);
        showAlert('Could not reach the ticket service. Please try again; you will not be charged twice.');
      });
    }

    function release() {
      var h = load().hold;
      if (!h) return;
      var btn = $('release-btn');
      busy(btn, true);
      clearAlert();
      api('DELETE', '/holds/' + encodeURIComponent(h.id), { token: h.hold_token }).then(function (r) {
        busy(btn, false);
        var e = errorOf(r);
        if (r.ok || e.code === 'hold_expired') {
          stopTimer('hold');
          save({ hold: undefined });
          return showEnd('Tickets released', 'You let the tickets go; they are back on sale for others.');
        }
        if (e.code === 'hold_confirmed') return restore();
        showAlert(plainError(r));
      }, function () {
        busy(btn, false);
        showAlert('Could not reach the ticket service. Please try again.');
      });
    }

    // --- the order ---
    function showOrder(order, fresh) {
      var list = $('order-units');
      clear(list);
      (order.units || []).forEach(function (u) { list.appendChild(node('li', null, u.label)); });
      var n = order.quantity || (order.units || []).length;
      text($('order-id'), order.id);
      if (order.state === 'cancelled') {
        text($('order-title'), 'Order cancelled');
        text($('order-summary'), 'This order was cancelled; its tickets went back on sale.');
      } else {
        text($('order-title'), 'Order confirmed');
        text($('order-summary'), 'You bought ' + plural(n, 'ticket', 'tickets') + (sale ? ' for ' + sale.name : '') + '. Keep your order number.');
      }
      $('view-order').setAttribute('data-state', order.state || '');
      setView('order');
      if (fresh) {
        // The confirmation above came with the payment; read the order back
        // as stored, which is what a reload will show too.
        var o = load().order;
        api('GET', '/orders/' + encodeURIComponent(order.id), { token: o && o.hold_token }).then(function (r) {
          if (r.ok && r.data) showOrder(r.data, false);
        }, function () {});
        setTimeout(function () { fetchSale().catch(function () {}); }, 2000);
      }
    }

    // --- after a reload: pick up where the visitor was ---
    function restore() {
      var st = load();
      if (st.order && st.order.id) {
        return api('GET', '/orders/' + encodeURIComponent(st.order.id), { token: st.order.hold_token }).then(function (r) {
          if (r.ok && r.data) return showOrder(r.data, false);
          if (r.status === 401 || r.status === 403 || r.status === 404) { save({ order: undefined }); return restore(); }
          showEnd('Could not load your order', plainError(r), { label: 'Try again', action: restore });
        }, function () {
          showEnd('Could not load your order', 'Could not reach the ticket service.', { label: 'Try again', action: restore });
        });
      }
      if (st.hold && st.hold.id) {
        return api('GET', '/holds/' + encodeURIComponent(st.hold.id), { token: st.hold.hold_token }).then(function (r) {
          if (r.ok && r.data) {
            var h = r.data;
            if (h.state === 'held' || h.state === 'active') {
              return showHold({ id: h.id, hold_token: st.hold.hold_token, expires_at: h.expires_at, units: h.units, quantity: h.quantity });
            }
            if (h.state === 'confirmed' && h.order_id) {
              save({ order: { id: h.order_id, hold_token: st.hold.hold_token }, hold: undefined });
              return restore();
            }
            save({ hold: undefined });
            if (h.state === 'expired') {
              return showEnd('Your hold has expired', 'The time to pay ran out, so the tickets went back on sale.',
                { label: 'Check my place', action: resumeQueue });
            }
            return restore();
          }
          if (r.status === 401 || r.status === 403 || r.status === 404) { save({ hold: undefined }); return restore(); }
          // Busy or down: show what we know and let the countdown run.
          showHold(st.hold);
        }, function () { showHold(st.hold); });
      }
      if (st.queue_token) {
        setView('loading');
        polling = true;
        return poll();
      }
      if (!sale) return;
      if (sale.state === 'sold_out') return soldOut(false);
      if (sale.state === 'closed') return closed();
      if (sale.mode === 'lottery' && sale.lottery_drawn_at) {
        return showEnd('Entries are closed', 'The lottery has been drawn, so new entries are closed.');
      }
      showJoin();
    }

    // --- wiring ---
    $('join-btn').addEventListener('click', join);
    $('buy-form').addEventListener('submit', hold);
    $('pay-btn').addEventListener('click', pay);
    $('release-btn').addEventListener('click', release);
    $('seats').addEventListener('input', function () { this.removeAttribute('aria-invalid'); });

    // Background tabs get throttled timers: check at once on return, so the
    // place is never lost to a sleeping tab.
    function pollNowIfWaiting() {
      if (polling && (currentView === 'queue' || currentView === 'buy')) schedulePoll(null, 0);
    }
    document.addEventListener('visibilitychange', function () { if (!document.hidden) pollNowIfWaiting(); });
    window.addEventListener('online', pollNowIfWaiting);

    if (!saleId) return showEnd('Sale not found', 'This address does not name a sale.');
    fetchSale().then(function (s) {
      if (!s) return showEnd('Sale not found', 'This sale does not exist or is no longer on offer.');
      restore();
    }, function (r) {
      // The sale's details could not be loaded; a returning visitor can
      // still follow their place, a new one is asked to retry.
      var st = load();
      if (st.queue_token || st.hold || st.order) return restore();
      showEnd('The ticket service is busy', r && r.status ? plainError(r) : 'Could not reach the ticket service.',
        { label: 'Try again', action: function () { location.reload(); } });
    });
  }

  // ---------------------------------------------------------------------------

  function start() {
    var page = document.body.getAttribute('data-page');
    if (page === 'index') indexPage();
    else if (page === 'sale') salePage();
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
