// node --test: the money formatting of format.js (SPEC §3 "Prices").

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  categoryAvailabilityText, currencyDigits, estimateText, fmtMoney, minorToDecimal, priceFromText, saleCategories,
  toMinorUnits, unitPriceText,
} from './format.js';

const NBSP = '\u00a0';

test('currency decimals come from Intl: EUR 2, JPY 0, KWD 3; not a code: null', () => {
  assert.equal(currencyDigits('EUR'), 2);
  assert.equal(currencyDigits('JPY'), 0);
  assert.equal(currencyDigits('KWD'), 3);
  assert.equal(currencyDigits('EU'), null);
  assert.equal(currencyDigits(null), null);
  assert.equal(currencyDigits('E1R'), null);
});

test('minor units as an exact decimal string', () => {
  assert.equal(minorToDecimal(4500, 2), '45.00');
  assert.equal(minorToDecimal(5, 2), '0.05');
  assert.equal(minorToDecimal(0, 2), '0.00');
  assert.equal(minorToDecimal(6800, 0), '6800');
  assert.equal(minorToDecimal(1500, 3), '1.500');
  assert.equal(minorToDecimal(-250, 2), '-2.50');
  assert.equal(minorToDecimal(100_000_000_000, 2), '1000000000.00');
});

test('EUR 4500 is €45.00 in en', () => {
  assert.equal(fmtMoney({ amount: 4500, currency: 'EUR' }, 'en'), '€45.00');
  assert.equal(fmtMoney({ amount: 3000, currency: 'EUR' }, 'en-US'), '€30.00');
  assert.equal(fmtMoney({ amount: 123456789, currency: 'EUR' }, 'en'), '€1,234,567.89');
  assert.equal(fmtMoney({ amount: 4500, currency: 'EUR' }, 'de'), '45,00' + NBSP + '€');
});

test('JPY 6800 is ¥6,800 (no decimals)', () => {
  assert.equal(fmtMoney({ amount: 6800, currency: 'JPY' }, 'en'), '¥6,800');
  assert.equal(fmtMoney({ amount: 13600, currency: 'JPY' }, 'en-US'), '¥13,600');
  assert.equal(fmtMoney({ amount: 0, currency: 'JPY' }, 'en'), '¥0');
});

test('KWD has three decimals', () => {
  assert.equal(fmtMoney({ amount: 1500, currency: 'KWD' }, 'en'), 'KWD' + NBSP + '1.500');
  assert.equal(fmtMoney({ amount: 12500, currency: 'KWD' }, 'en'), 'KWD' + NBSP + '12.500');
  assert.equal(fmtMoney({ amount: 7, currency: 'KWD' }, 'en'), 'KWD' + NBSP + '0.007');
});

test('an unpriced thing formats to nothing', () => {
  assert.equal(fmtMoney(null, 'en'), '');
  assert.equal(fmtMoney(undefined, 'en'), '');
  assert.equal(fmtMoney({}, 'en'), '');
  assert.equal(fmtMoney({ amount: 4500, currency: null }, 'en'), '');
  assert.equal(fmtMoney({ amount: null, currency: 'EUR' }, 'en'), '');
  assert.equal(fmtMoney({ amount: 'x', currency: 'EUR' }, 'en'), '');
  // A hold of an unpriced sale has no total.
  const hold = { id: 'h', units: [{ id: '1', label: 'GA-1' }] };
  assert.equal(fmtMoney(hold.total, 'en'), '');
  assert.equal(unitPriceText(hold.units[0], null, 'en'), '');
});

test('a bad locale or an unknown code still says the amount', () => {
  assert.equal(fmtMoney({ amount: 4500, currency: 'EUR' }, 'not a locale!'), fmtMoney({ amount: 4500, currency: 'EUR' }));
  assert.equal(fmtMoney({ amount: 4500, currency: 'eur' }, 'en'), '€45.00');
  assert.equal(fmtMoney({ amount: 4500, currency: 'EURO' }, 'en'), '4,500 EURO');
});

test('prices typed in major units become minor units', () => {
  assert.deepEqual(toMinorUnits('45', 'EUR'), { amount: 4500 });
  assert.deepEqual(toMinorUnits('45.5', 'EUR'), { amount: 4550 });
  assert.deepEqual(toMinorUnits('45,50', 'EUR'), { amount: 4550 });
  assert.deepEqual(toMinorUnits(' 0.05 ', 'EUR'), { amount: 5 });
  assert.deepEqual(toMinorUnits('6800', 'JPY'), { amount: 6800 });
  assert.deepEqual(toMinorUnits('6 800', 'JPY'), { amount: 6800 });
  assert.deepEqual(toMinorUnits('1.5', 'KWD'), { amount: 1500 });
  assert.deepEqual(toMinorUnits('8,800', 'JPY'), { amount: 8800 });
  assert.deepEqual(toMinorUnits('1,234.5', 'EUR'), { amount: 123450 });
  assert.deepEqual(toMinorUnits('1,234,567', 'JPY'), { amount: 1234567 });
  assert.deepEqual(toMinorUnits('0', 'EUR'), { amount: 0 });
  assert.match(toMinorUnits('6800.5', 'JPY').error, /JPY has no decimals/);
  assert.match(toMinorUnits('1.234', 'EUR').error, /EUR has 2 decimals/);
  assert.match(toMinorUnits('', 'EUR').error, /like 45\.00/);
  assert.match(toMinorUnits('-5', 'EUR').error, /like 45\.00/);
  assert.match(toMinorUnits('4e3', 'EUR').error, /like 45\.00/);
  assert.match(toMinorUnits('45', '').error, /currency/);
});

const demo = {
  currency: 'JPY',
  availability: {
    categories: [
      { name: 'Early bird', amount: 6800, units: 100, available: 40, held: 10, sold: 50, unreleased: 0 },
      { name: 'Regular', amount: 8800, units: 200, available: 0, held: 0, sold: 0, unreleased: 200 },
    ],
  },
};

test('the sales list says "from" the lowest price on offer', () => {
  assert.equal(priceFromText(demo, 'en'), 'from ¥6,800');
  const earlyGone = structuredClone(demo);
  earlyGone.availability.categories[0].available = 0;
  earlyGone.availability.categories[1].available = 5;
  assert.equal(priceFromText(earlyGone, 'en'), 'from ¥8,800');
  const single = { currency: 'EUR', availability: { categories: [{ name: 'Standard', amount: 4500, available: 3 }] } };
  assert.equal(priceFromText(single, 'en'), '€45.00');
  assert.equal(priceFromText({ currency: null, availability: { total: 2 } }, 'en'), '');
  assert.deepEqual(saleCategories({ currency: null, availability: {} }), []);
  assert.equal(saleCategories(demo).length, 2);
});

test('a category’s availability in words', () => {
  assert.equal(categoryAvailabilityText(demo.availability.categories[0], 'en'), '40 left');
  assert.equal(categoryAvailabilityText(demo.availability.categories[1], 'en'), 'on sale later');
  assert.equal(categoryAvailabilityText({ available: 0, held: 2, sold: 1, unreleased: 0 }, 'en'), 'none left right now');
  assert.equal(categoryAvailabilityText({ available: 0, held: 0, sold: 3, unreleased: 0 }, 'en'), 'sold out');
});

test('a unit’s category and price; an estimate of a quantity', () => {
  assert.equal(unitPriceText({ id: '1', label: 'GA-1', category: 'Early bird', price: 6800 }, 'JPY', 'en'), 'Early bird · ¥6,800');
  assert.equal(unitPriceText({ id: '1', label: 'GA-1', price: 4500 }, 'EUR', 'en'), '€45.00');
  assert.equal(estimateText(2, 6800, 'JPY', 'en'), '2 × ¥6,800 = ¥13,600');
  assert.equal(estimateText(1, 4500, 'EUR', 'en'), '€45.00');
  assert.equal(estimateText(2, null, 'EUR', 'en'), '');
});

test('the sale’s header line names the lowest price', async () => {
  const { saleMetaText } = await import('./format.js');
  const sale = { ...demo, mode: 'fifo', per_user_limit: 4 };
  sale.availability = { ...demo.availability, total: 300, available: 40, unreleased: 200 };
  assert.equal(saleMetaText(sale, 'en-US'), 'From ¥6,800 · 40 of 300 available · 200 released later · up to 4 per person');
});

test('too few left in the chosen category is said with its name', async () => {
  const { plainError } = await import('./format.js');
  assert.equal(plainError({ code: 'insufficient_stock' }, 409, { category: 'Regular' }),
    'There aren’t that many Regular tickets left. Try a smaller number or another category.');
  assert.equal(plainError({ code: 'insufficient_stock' }, 409, {}), 'There aren’t that many tickets left. Try a smaller number.');
});
