// A booking's price as every page shows it (the mails say the same: booking_rush/contract/pricing.py):
// the seats at the list price, each discount (early bird, bundle, promo code), the total, with
// the currency. `price` is the API's breakdown (the `price` of a booking, a reservation or a quote).

function discountLabel(discount, lines) {
  if (discount.kind === "early_bird") {
    const early = lines.find((line) => line.kind === "early_bird");
    return early ? `Early bird (${early.quantity} at ${early.unit_price})` : "Early bird";
  }
  if (discount.kind === "voucher") return `Voucher ${discount.code || ""}`;
  if (discount.kind === "promo") {
    const percent = discount.percent == null ? "" : ` (${discount.percent}%)`;
    return `Code ${discount.code || ""}${percent}`;
  }
  return discount.name || "Bundle";
}

function row(label, amount, kind) {
  const tr = document.createElement("tr");
  tr.className = kind;
  const th = document.createElement("th");
  th.scope = "row";
  th.textContent = label;
  const td = document.createElement("td");
  td.textContent = amount;
  tr.append(th, td);
  return tr;
}

// Fill `table` (a <table>) with the breakdown of `price` for `quantity` seats.
export function renderBreakdown(table, price, quantity) {
  const rows = [row(`${quantity} × ${price.list_price} (list price)`, price.subtotal, "list")];
  for (const discount of price.discounts) {
    rows.push(row(discountLabel(discount, price.lines), `−${discount.amount}`, `discount ${discount.kind}`));
  }
  rows.push(row("Total", `${price.total} ${price.currency}`, "total"));
  const body = document.createElement("tbody");
  body.append(...rows);
  table.replaceChildren(body);
  table.hidden = false;
}
