// Copy buttons: <button data-copy="ELEMENT_ID"> copies that element's text. Without
// JavaScript the key is still shown and can be selected by hand.
for (const button of document.querySelectorAll("[data-copy]")) {
  button.addEventListener("click", async () => {
    const text = document.getElementById(button.dataset.copy).textContent;
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch {
      button.textContent = "Select the key and copy it";
    }
  });
}
