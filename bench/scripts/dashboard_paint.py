"""First paint of a run page of the pnnd dashboard in headless Chromium (pnn-bench
dashboard-paint runs this against an in-process pnnd with a large run in its store).

    python3 dashboard_paint.py URL RUN_ID REPEATS

Each repeat is a fresh navigation to URL/#run/RUN_ID; first paint is the page's own
performance.now() (milliseconds since navigation start) in the animation frame after the run's
charts were drawn. Prints one JSON line."""
import json
import statistics
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def main():
    url, run_id, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    paints, points = [], None
    try:
        for i in range(repeats + 1):  # the first load warms the browser's caches: not counted
            driver.get("about:blank")
            driver.get("%s/?n=%d#run/%s" % (url, i, run_id))
            end = time.monotonic() + 30
            value = None
            while time.monotonic() < end and value is None:
                value = driver.execute_script("return window.pnnDashboard && window.pnnDashboard.runPaintedAt")
                if value is None:
                    time.sleep(0.02)
            if value is None:
                state = driver.execute_script("return JSON.stringify(window.pnnDashboard || null) + ' notice: ' + "
                                              "(document.querySelector('#notice') || {}).textContent + ' location: ' + location.href + ' resources: ' + "
                                              "JSON.stringify(performance.getEntriesByType('resource').map(e => [e.name, Math.round(e.responseEnd)]))")
                raise SystemExit("the run page did not paint within 30 s (page state: %s; console: %s)"
                                 % (state, driver.get_log("browser")))
            points = driver.execute_script("return window.pnnDashboard.runPoints")
            if i > 0:
                paints.append(value)
    finally:
        driver.quit()
    print(json.dumps({"first_paint_ms": statistics.median(paints), "first_paint_ms_max": max(paints),
                      "first_paint_ms_all": paints, "points_drawn": points, "repeats": repeats,
                      "browser": "chromium --headless=new (selenium)"}))


if __name__ == "__main__":
    main()
