"""The console's money pages: the merchant money page, statements, settlements, the cost comparison,
transaction search and export, rate plans, contracts and deposit release."""
