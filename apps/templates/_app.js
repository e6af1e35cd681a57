// Sortable tables: click a header to sort by it (numbers as numbers), again to reverse.
document.querySelectorAll("table.sortable").forEach(table => {
  table.querySelectorAll("th").forEach((th, column) => {
    th.classList.add("sortable");
    th.addEventListener("click", () => {
      const body = table.tBodies[0], rows = Array.from(body.rows);
      const sign = th.dataset.order === "asc" ? -1 : 1;
      th.dataset.order = sign === 1 ? "asc" : "desc";
      const key = row => { const text = row.cells[column].textContent; const x = parseFloat(text); return isNaN(x) ? text : x; };
      rows.sort((a, b) => { const x = key(a), y = key(b); return (x > y ? 1 : x < y ? -1 : 0) * sign; });
      rows.forEach(row => body.appendChild(row));
    });
  });
});
// A running job: poll its state; when it ends, show the page again with its result.
const job = document.getElementById("job");
if (job && job.dataset.state === "running") {
  const poll = () => fetch("/jobs/" + job.dataset.id).then(r => r.json()).then(status => {
    document.getElementById("job-message").textContent = status.message;
    if (status.state === "running") setTimeout(poll, 500); else location.reload();
  });
  setTimeout(poll, 500);
}
